import { expect } from 'chai';
import { copyFileSync, mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCertificateAuthority, issueCertificate } from '../../src/pki/dev-certs.js';
import { spawnServer, type ServerProcess } from '../helpers/server-process.js';
import { testEnv, testPki } from '../helpers/test-server.js';
import { eventually, holdsAfter } from '../helpers/eventually.js';

describe('node dist/main.js: SIGHUP reloads the certificates (systemctl reload)', function () {
  this.timeout(40_000);
  let server: ServerProcess | null = null;

  after(async () => {
    server?.kill('SIGKILL');
    await server?.exited;
  });

  it('serves a renewed certificate after SIGHUP, without the file watch, and keeps running', async () => {
    const pki = await testPki();
    const dir = mkdtempSync(join(tmpdir(), 'fleet-telemetry-sighup-'));
    const files = { cert: join(dir, 'server.pem'), key: join(dir, 'server.key'), caChain: join(dir, 'ca-chain.pem') };
    copyFileSync(pki.serverCert, files.cert);
    copyFileSync(pki.serverKey, files.key);
    copyFileSync(pki.caChain, files.caChain);
    server = spawnServer(await testEnv({ LOG_LEVEL: 'info', TLS_CERT_FILE: files.cert, TLS_KEY_FILE: files.key, TLS_CA_CHAIN_FILE: files.caChain, TLS_WATCH_FILES: 'false' }));
    await server.waitForEvent('server_started');

    const root = await createCertificateAuthority({ commonName: 'SIGHUP Test Root CA' });
    const leaf = await issueCertificate({ issuer: root, commonName: 'localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], serverAuth: true });
    for (const [path, content] of [[files.key, leaf.keyPem], [files.cert, leaf.chainPem], [files.caChain, root.certPem]] as const) {
      writeFileSync(`${path}.new`, content);
      renameSync(`${path}.new`, path);
    }
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(server.logs.some((l) => l.event === 'certificate_reloaded'), 'not reloaded without SIGHUP (watch off)').to.equal(false);

    server.kill('SIGHUP');
    const reloaded = await server.waitForEvent('certificate_reloaded');
    expect(reloaded.listener).to.be.oneOf(['vehicle', 'dashboard']);
    const running = server;
    const listeners = () => running.logs.filter((l) => l.event === 'certificate_reloaded').map((l) => l.listener);
    // Both listeners reloaded is the event; then a settle in which neither reloads twice.
    await holdsAfter(eventually(() => listeners().length >= 2, 5000, 'both listeners reloaded'), () => {
      expect(listeners()).to.have.members(['vehicle', 'dashboard']);
      expect(running.child.exitCode).to.equal(null);
    }, 300);
  });
});
