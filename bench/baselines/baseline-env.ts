/** The subset of the server's environment the baseline servers read (same names as ours). */
export interface BaselineEnv {
  host: string;
  port: number;
  dashboardHost: string;
  dashboardPort: number;
  certFile: string;
  keyFile: string;
  vehicleCaFile: string;
  jwtSecret: string;
}

export function baselineEnv(env: NodeJS.ProcessEnv = process.env): BaselineEnv {
  const required = (name: string): string => {
    const value = env[name];
    if (value === undefined || value === '') throw new Error(`${name} is required`);
    return value;
  };
  return {
    host: env.HOST || '127.0.0.1',
    port: Number(required('PORT')),
    dashboardHost: env.DASHBOARD_HOST || '127.0.0.1',
    dashboardPort: Number(env.DASHBOARD_PORT || 0),
    certFile: required('TLS_CERT_FILE'),
    keyFile: required('TLS_KEY_FILE'),
    vehicleCaFile: required('VEHICLE_CA_FILE'),
    jwtSecret: env.JWT_SECRET ?? '',
  };
}
