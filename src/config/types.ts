/**
 * The validated configuration the rest of the server receives. Only src/config reads the environment;
 * every other module takes the slice of this object it needs.
 */
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface AppConfig {
  env: 'production' | 'development' | 'test';
  logLevel: LogLevel;
  /** Public DNS name cars connect to; the server certificate must cover it. */
  domain: string;
  vehicle: {
    host: string;
    port: number;
    /** Frames larger than this get the error reply with an empty txid. */
    maxFrameBytes: number;
    /** Seconds without traffic before uWS pings / drops the socket (multiple of 4, uWS rule). */
    idleTimeoutSeconds: number;
    /** Per-socket send buffer before a car is considered stuck. */
    maxBackpressureBytes: number;
  };
  tls: {
    certFile: string;
    keyFile: string;
    keyPassphrase: string;
    /** The chain cars use to verify us: the `ca` of the car-side telemetry config. */
    caChainFile: string;
  };
  vehicleCa: {
    /** CAs trusted for car client certificates: Tesla's bundle in production, a dev/test CA otherwise. */
    file: string;
    /** Optional extra operator CA file; certificates chaining to it count as vehicles with CN = VIN. */
    extraFile: string;
  };
  decode: {
    workers: number;
    batchMaxFrames: number;
    taskTimeoutMs: number;
  };
  watchdog: {
    staleAfterSeconds: number;
    sweepIntervalSeconds: number;
  };
  dashboard: {
    host: string;
    port: number;
    /** Empty = same as the vehicle listener's certificate. */
    certFile: string;
    keyFile: string;
    jwtSecret: string;
    jwksUrl: string;
    jwtIssuer: string;
    jwtAudience: string;
    allowedOrigins: string[];
    maxBackpressureBytes: number;
  };
  metrics: {
    host: string;
    port: number;
  };
  tesla: {
    accessToken: string;
    vins: string[];
    apiBaseUrl: string;
    publicKeyFile: string;
    autoConfigure: boolean;
  };
  selfCheck: boolean;
  shutdownGraceMs: number;
}
