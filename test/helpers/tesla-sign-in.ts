import { expect } from 'chai';
import { request as httpsRequest } from 'node:https';
import type { FakeTeslaOAuth } from './fake-tesla-oauth.js';

/** Sign in with Tesla against the dashboard listener without a browser, for the integration tests. */

export interface Reply {
  status: number;
  location: string;
  setCookies: string[];
  body: string;
}

/** One https request to the dashboard listener, redirects not followed. */
export function call(url: string, ca: Buffer, options: { method?: string; cookie?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method: options.method ?? 'GET', ca, servername: 'localhost', headers: options.cookie ? { cookie: options.cookie } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, location: String(res.headers.location ?? ''), setCookies: res.headers['set-cookie'] ?? [], body: Buffer.concat(chunks).toString('utf8') }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

/** The value of the cookie `name` the reply sets. */
export function cookieFrom(reply: Reply, name: string): string {
  const line = reply.setCookies.find((c) => c.startsWith(`${name}=`));
  if (line === undefined) throw new Error(`no ${name} cookie set`);
  return line.slice(name.length + 1).split(';')[0]!;
}

/** The session cookie a sign-in's callback set, as a Cookie header. */
export function sessionCookie(done: Reply): string {
  return `__Host-ft-session=${cookieFrom(done, '__Host-ft-session')}`;
}

/**
 * A dashboard on `port` signing in with the fake Tesla: the TESLA_* settings and the redirect URI,
 * which the fake is told to accept.
 */
export function signInEnv(tesla: FakeTeslaOAuth, port: number): Record<string, string> {
  const redirect = `https://127.0.0.1:${port}/auth/callback`;
  tesla.redirectUris.add(redirect);
  return { DASHBOARD_PORT: String(port), ...tesla.env(), DASHBOARD_REDIRECT_URI: redirect };
}

/** /auth/login, then the fake Tesla's authorize redirect (the consent), without a browser. */
export async function startLogin(base: string, ca: Buffer): Promise<{ login: Reply; loginCookie: string; callbackUrl: string }> {
  const login = await call(`${base}/auth/login`, ca);
  expect(login.status).to.equal(302);
  const loginCookie = cookieFrom(login, '__Host-ft-login');
  const consent = await fetch(login.location, { redirect: 'manual' });
  const callback = new URL(consent.headers.get('location') ?? '');
  return { login, loginCookie, callbackUrl: `${base}${callback.pathname}${callback.search}` };
}

/** The whole sign-in: login, consent, and the callback with the login cookie (`done` sets the session). */
export async function signIn(base: string, ca: Buffer): Promise<{ login: Reply; done: Reply }> {
  const started = await startLogin(base, ca);
  const done = await call(started.callbackUrl, ca, { cookie: `__Host-ft-login=${started.loginCookie}` });
  return { login: started.login, done };
}
