// uWS reads its HTTP header limit from the environment once, when the native module loads, so this is
// imported before it (uws.ts). The default 4 KiB answers 431 to a dashboard token naming ~140 VINs
// before any handler sees it; 16 KiB fits ~600 (docs/DASHBOARD-PROTOCOL.md). An operator's own value wins.
export const UWS_MAX_HEADERS_BYTES = 16 * 1024;
process.env.UWS_HTTP_MAX_HEADERS_SIZE ??= String(UWS_MAX_HEADERS_BYTES);
