import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';

export const FAKE_TESLA_ISSUER = 'https://fleet-auth.example.test/oauth2/v3/nts';
export const FAKE_TESLA_AUDIENCE = 'https://fleet-api.example.test';

/**
 * A local stand-in for Tesla's side of sign-in, over plain http on 127.0.0.1: a JWKS endpoint with an
 * RS256 key, and `GET /api/1/vehicles` answering per bearer token. Counts calls so caching shows.
 */
export class FakeTeslaAuth {
  readonly vehiclesByToken = new Map<string, string[]>();
  vehicleCalls = 0;
  jwksCalls = 0;
  /** While set, /api/1/vehicles answers only once it resolves (a slow Fleet API). */
  vehiclesGate: Promise<void> | null = null;
  /** Answer /api/1/vehicles with this status instead (e.g. 401, 503). */
  vehiclesStatus = 200;
  private server: Server | null = null;
  private privateKey: CryptoKey | null = null;
  private jwk: JWK | null = null;
  port = 0;

  async start(): Promise<this> {
    const { privateKey, publicKey } = await generateKeyPair('RS256');
    this.privateKey = privateKey;
    this.jwk = { ...(await exportJWK(publicKey)), kid: 'tesla-test-1', alg: 'RS256', use: 'sig' };
    this.server = createServer((req, res) => {
      if (req.url === '/jwks') {
        this.jwksCalls++;
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ keys: [this.jwk] }));
        return;
      }
      if (req.url?.startsWith('/api/1/vehicles')) {
        this.vehicleCalls++;
        const gate = this.vehiclesGate;
        if (gate !== null) {
          void gate.then(() => this.answerVehicles(req, res));
          return;
        }
        this.answerVehicles(req, res);
        return;
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  private answerVehicles(req: IncomingMessage, res: ServerResponse): void {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
    const vins = this.vehiclesByToken.get(token);
    if (this.vehiclesStatus !== 200) {
      res.writeHead(this.vehiclesStatus).end('{}');
      return;
    }
    if (vins === undefined) {
      res.writeHead(401, { 'Content-Type': 'application/json' }).end('{"error":"invalid bearer token"}');
      return;
    }
    const body = { response: vins.map((vin, i) => ({ id: 1000 + i, vin, state: 'online' })), count: vins.length, pagination: { previous: null, next: null, current: 1, per_page: 100, count: vins.length, pages: 1 } };
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get jwksUrl(): string {
    return `${this.baseUrl}/jwks`;
  }

  /** The dashboard's settings for Tesla sign-in tokens checked against this fake (JWKS, issuer, audience, Fleet API). */
  dashboardEnv(): Record<string, string> {
    return {
      DASHBOARD_TESLA_SIGN_IN: 'true',
      TESLA_AUTH_JWKS_URL: this.jwksUrl,
      TESLA_AUTH_ISSUER: FAKE_TESLA_ISSUER,
      TESLA_AUTH_AUDIENCE: FAKE_TESLA_AUDIENCE,
      TESLA_API_BASE_URL: this.baseUrl,
    };
  }

  /** A Tesla-shaped access token: RS256, Tesla's issuer and audience, `scp` scopes. */
  async token(options: { scopes?: string[]; ttlSeconds?: number; issuer?: string; audience?: string | string[]; vins?: string[] } = {}): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const token = await new SignJWT({ scp: options.scopes ?? ['openid', 'offline_access', 'vehicle_device_data'], ou_code: 'NA' })
      .setProtectedHeader({ alg: 'RS256', kid: 'tesla-test-1', typ: 'JWT' })
      .setIssuer(options.issuer ?? FAKE_TESLA_ISSUER)
      .setAudience(options.audience ?? [FAKE_TESLA_AUDIENCE, `${FAKE_TESLA_ISSUER}/userinfo`])
      .setSubject('tesla-user-1')
      .setJti(randomUUID())
      .setIssuedAt(now)
      .setExpirationTime(now + (options.ttlSeconds ?? 600))
      .sign(this.privateKey!);
    if (options.vins !== undefined) this.vehiclesByToken.set(token, options.vins);
    return token;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
