/**
 * The one VIN shape (ISO 3779 as Tesla uses it): 17 capital letters and digits without I, O or Q.
 * Certificates, tokens, dashboard requests, settings and CLI flags are all checked against it.
 */
export const VIN_PATTERN = /^[A-HJ-NPR-Z0-9]{17}$/;
