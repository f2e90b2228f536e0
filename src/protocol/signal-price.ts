/** The published price: 150,000 signals per US$1 (tesla-protocol.md section 5). */
export const SIGNALS_PER_US_DOLLAR = 150_000;
