import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer, type Server } from 'node:tls';
import { checkServerChain } from '../../src/pki/chain-check.js';
import { createCertificateAuthority, ensureDevPki, issueCertificate, type CertificateAuthority, type DevPkiFiles } from '../../src/pki/dev-certs.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const DAY = 86_400_000;

/** A bare TLS server presenting exactly `certPem` (leaf, and whatever intermediates it holds). */
async function serve(certPem: string, keyPem: string): Promise<{ server: Server; port: number }> {
  const server = createServer({ cert: certPem, key: keyPem }, (socket) => socket.end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('check-cert: the server certificate as a car sees it', function () {
  this.timeout(30_000);
  let dir: string;
  let pki: DevPkiFiles;
  let root: CertificateAuthority;
  let intermediate: CertificateAuthority;
  const servers: Server[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'check-cert-test-'));
    pki = await ensureDevPki({ dir: join(dir, 'pki'), domain: 'localhost', vins: [] });
    root = await createCertificateAuthority({ commonName: 'Check Root CA' });
    intermediate = await createCertificateAuthority({ commonName: 'Check Intermediate CA', parent: root });
  });

  after(() => {
    for (const server of servers) server.close();
  });

  async function start(certPem: string, keyPem: string): Promise<number> {
    const { server, port } = await serve(certPem, keyPem);
    servers.push(server);
    return port;
  }

  it('passes the dev chain, with days left', async () => {
    const port = await start(readFileSync(pki.serverCert, 'utf8'), readFileSync(pki.serverKey, 'utf8'));
    const report = await checkServerChain({ host: '127.0.0.1', port, hostname: 'localhost', caPem: readFileSync(pki.caChain, 'utf8') });
    expect(report.problems).to.deep.equal([]);
    expect(report.ok).to.equal(true);
    expect(report.daysLeft).to.be.greaterThan(700);
    expect(report.details.join('\n')).to.contain('Fleet Telemetry Dev Server CA');
  });

  it('fails a hostname the certificate does not cover', async () => {
    const port = await start(readFileSync(pki.serverCert, 'utf8'), readFileSync(pki.serverKey, 'utf8'));
    const report = await checkServerChain({ host: '127.0.0.1', port, hostname: 'telemetry.example.com', caPem: readFileSync(pki.caChain, 'utf8') });
    expect(report.ok).to.equal(false);
    expect(report.problems).to.have.length(1);
    expect(report.problems[0]).to.match(/^hostname mismatch: the certificate does not cover "telemetry\.example\.com"/);
  });

  it('fails an expired certificate and says how long ago it expired', async () => {
    const leaf = await issueCertificate({
      issuer: intermediate,
      commonName: 'localhost',
      dnsNames: ['localhost'],
      serverAuth: true,
      notBefore: new Date(Date.now() - 30 * DAY),
      notAfter: new Date(Date.now() - 3 * DAY - 3_600_000),
    });
    const port = await start(leaf.chainPem, leaf.keyPem);
    const report = await checkServerChain({ host: '127.0.0.1', port, hostname: 'localhost', caPem: intermediate.certPem + root.certPem });
    expect(report.ok).to.equal(false);
    expect(report.daysLeft).to.equal(-4);
    expect(report.problems).to.deep.equal([`certificate "localhost" expired 3 days ago (notAfter ${new Date(readNotAfter(leaf.certPem)).toISOString()})`]);
  });

  it('fails a chain missing its intermediate (the ca holds only the root)', async () => {
    const leaf = await issueCertificate({ issuer: intermediate, commonName: 'localhost', dnsNames: ['localhost'], serverAuth: true });
    const port = await start(leaf.certPem, leaf.keyPem); // leaf only: the intermediate is not sent
    const report = await checkServerChain({ host: '127.0.0.1', port, hostname: 'localhost', caPem: root.certPem });
    expect(report.ok).to.equal(false);
    expect(report.problems).to.have.length(1);
    expect(report.problems[0]).to.match(/^partial chain: the server sends "localhost" without the intermediate that issued it \("Check Intermediate CA"\)/);

    // The same server passes once the intermediate is sent.
    const fixed = await start(leaf.chainPem, leaf.keyPem);
    expect((await checkServerChain({ host: '127.0.0.1', port: fixed, hostname: 'localhost', caPem: root.certPem })).ok).to.equal(true);
  });

  it('fails a ca chain that stops short of the root', async () => {
    const port = await start(readFileSync(pki.serverCert, 'utf8'), readFileSync(pki.serverKey, 'utf8'));
    const report = await checkServerChain({ host: '127.0.0.1', port, hostname: 'localhost', caPem: readFileSync(pki.serverCaCert, 'utf8') });
    expect(report.ok).to.equal(false);
    expect(report.problems[0]).to.match(/holds no root/);
  });

  it('fails a ca chain of another CA', async () => {
    const port = await start(readFileSync(pki.serverCert, 'utf8'), readFileSync(pki.serverKey, 'utf8'));
    const report = await checkServerChain({ host: '127.0.0.1', port, hostname: 'localhost', caPem: intermediate.certPem + root.certPem });
    expect(report.ok).to.equal(false);
    expect(report.problems[0]).to.match(/ca chain does not lead to the server's root/);
  });

  it('reports a port where nothing listens', async () => {
    const { server, port } = await serve(readFileSync(pki.serverCert, 'utf8'), readFileSync(pki.serverKey, 'utf8'));
    await new Promise((resolve) => server.close(resolve));
    const report = await checkServerChain({ host: '127.0.0.1', port, hostname: 'localhost', caPem: readFileSync(pki.caChain, 'utf8') });
    expect(report.problems[0]).to.equal(`cannot connect to 127.0.0.1:${port}: ECONNREFUSED`);
  });

  it('`check-cert` exits 0 on the dev chain and 1 with the reason on a partial chain', async () => {
    const good = await start(readFileSync(pki.serverCert, 'utf8'), readFileSync(pki.serverKey, 'utf8'));
    const ok = await runCli(['check-cert', '--host', '127.0.0.1', '--port', String(good), '--hostname', 'localhost', '--ca', pki.caChain]);
    expect(ok.code, ok.stderr).to.equal(0);
    expect(ok.stdout).to.contain('OK: a car with this config would accept the server certificate');
    expect(ok.stdout).to.match(/days left/);

    const leaf = await issueCertificate({ issuer: intermediate, commonName: 'localhost', dnsNames: ['localhost'], serverAuth: true });
    const partial = await start(leaf.certPem, leaf.keyPem);
    const rootFile = join(dir, 'root-only.pem');
    writeFileSync(rootFile, root.certPem);
    const bad = await runCli(['check-cert', '--host', '127.0.0.1', '--port', String(partial), '--hostname', 'localhost', '--ca', rootFile]);
    expect(bad.code).to.equal(1);
    expect(bad.stderr).to.contain('FAIL: partial chain');

    const usage = await runCli(['check-cert', '--port', 'eighty']);
    expect(usage.code).to.equal(2);
    expect(usage.stderr).to.contain('--port must be an integer');
  });
});

function readNotAfter(pem: string): string {
  return new X509Certificate(pem).validTo;
}
