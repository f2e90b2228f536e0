import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import uWS from 'uWebSockets.js';

// The ELF editor is plain JS outside the TypeScript tree (it runs at install time), so it is imported
// from the project root at run time; dist/test/unit/ is three levels below the root.
type ElfModule = typeof import('../../scripts/uws-glibc-elf.mjs');
const projectRoot = new URL('../../../', import.meta.url);

const packageDir = path.dirname(createRequire(import.meta.url).resolve('uWebSockets.js'));
const abi = process.versions.modules;
const hostBinary = `uws_linux_${process.arch}_${abi}.node`;

/** The upstream bytes: the postinstall backup if it ran, otherwise the installed file if still pristine. */
function originalBytes(elf: ElfModule, name: string): Buffer | null {
  const file = path.join(packageDir, name);
  if (existsSync(`${file}.orig`)) return readFileSync(`${file}.orig`);
  const bytes = readFileSync(file);
  return elf.findGlibc238Imports(bytes).requirement === 'required' ? bytes : null;
}

function glibc238Need(elf: ElfModule, bytes: Uint8Array) {
  return elf.readVersionNeeds(bytes).flatMap((n) => n.versions).find((v) => v.name === elf.GLIBC_238);
}

describe('uWebSockets.js glibc 2.38 fix', function () {
  let elf: ElfModule;
  let work: string;

  before(async function () {
    elf = (await import(new URL('scripts/uws-glibc-elf.mjs', projectRoot).href)) as ElfModule;
    work = mkdtempSync(path.join(tmpdir(), 'uws-glibc-'));
  });

  after(function () {
    rmSync(work, { recursive: true, force: true });
  });

  describe('ELF editor on the upstream binaries', function () {
    const linuxBinaries = readdirSync(packageDir).filter((n) => new RegExp(`^uws_linux_[a-z0-9]+_${abi}\\.node$`).test(n));

    it('finds a Linux binary for this Node ABI', function () {
      expect(linuxBinaries).to.include(hostBinary);
    });

    for (const name of linuxBinaries) {
      it(`${name}: patched copy no longer needs GLIBC_2.38, and patching again changes nothing`, function () {
        const original = originalBytes(elf, name);
        if (!original) this.skip(); // installed file already patched and no backup to start from
        const copy = path.join(work, name);
        writeFileSync(copy, original);
        const bytes = readFileSync(copy);

        const before = elf.findGlibc238Imports(bytes);
        expect(before.requirement).to.equal('required');
        expect(before.blockers).to.deep.equal([]);
        expect(before.imports.map((i) => i.name)).to.include('__isoc23_strtol');

        const result = elf.patchGlibc238Imports(bytes);
        expect(result.patched).to.have.members(before.imports.map((i) => i.name));
        expect(result.weakened).to.equal(true);
        expect(bytes.length).to.equal(original.length);
        const need = glibc238Need(elf, bytes);
        expect(need, 'GLIBC_2.38 entry in .gnu.version_r').to.not.equal(undefined);
        expect(need!.weak).to.equal(true);
        const after = elf.findGlibc238Imports(bytes);
        expect(after.requirement).to.equal('weak');
        expect(after.imports).to.deep.equal([]);
        // Each rebinding touches a 4-byte name index and a 2-byte version entry; plus one flags byte.
        let changedBytes = 0;
        for (let i = 0; i < bytes.length; i++) if (bytes[i] !== original[i]) changedBytes++;
        expect(changedBytes).to.be.greaterThan(0).and.at.most(result.patched.length * 6 + 2);

        const again = Buffer.from(bytes);
        expect(elf.patchGlibc238Imports(again)).to.deep.equal({ patched: [], weakened: false });
        expect(again.equals(bytes)).to.equal(true);

        const installed = path.join(packageDir, name);
        if (existsSync(`${installed}.orig`)) {
          expect(readFileSync(installed).equals(bytes), 'installed file equals a fresh patch of the backup').to.equal(true);
        }
        if (name === hostBinary) {
          writeFileSync(copy, bytes);
          const load = spawnSync(process.execPath,
            ['-e', `const u = require(${JSON.stringify(copy)}); if (typeof u.App !== 'function') process.exit(2);`],
            { encoding: 'utf8', timeout: 30_000 });
          expect(load.status, load.stderr).to.equal(0);
        }
      });
    }

    it('refuses a GLIBC_2.38 import it does not know, leaving the bytes untouched', function () {
      const original = originalBytes(elf, hostBinary);
      if (!original) this.skip();
      const bytes = Buffer.from(original);
      const at = bytes.indexOf('\0__isoc23_strtol\0', 0, 'latin1');
      expect(at).to.be.greaterThan(0);
      bytes.write('X', at + '\0__isoc23_strtol'.length - 1, 'latin1'); // "__isoc23_strtoX"
      const tampered = Buffer.from(bytes);
      expect(() => elf.patchGlibc238Imports(bytes)).to.throw(elf.ElfPatchError, /__isoc23_strtoX/)
        .with.property('code', 'GLIBC_238_OTHER_SYMBOLS');
      expect(bytes.equals(tampered)).to.equal(true);
    });

    it('rejects input that is not a 64-bit little-endian shared object with a typed error', function () {
      const original = originalBytes(elf, hostBinary) ?? readFileSync(path.join(packageDir, hostBinary));
      const notElf = Buffer.from('this is not an ELF file, just some text padding it out to 64 bytes or more!!');
      expect(() => elf.findGlibc238Imports(notElf)).to.throw(elf.ElfPatchError).with.property('code', 'NOT_ELF');
      const elf32 = Buffer.from(original.subarray(0, 4096));
      elf32[4] = 1;
      expect(() => elf.patchGlibc238Imports(elf32)).to.throw(elf.ElfPatchError).with.property('code', 'UNSUPPORTED_ELF');
      const truncated = Buffer.from(original.subarray(0, 4096));
      expect(() => elf.patchGlibc238Imports(truncated)).to.throw(elf.ElfPatchError).with.property('code', 'ELF_TRUNCATED');
    });
  });

  describe('installed module', function () {
    it('loads in this process with App and SSLApp', function () {
      expect(uWS.App).to.be.a('function');
      expect(uWS.SSLApp).to.be.a('function');
    });

    it('serves HTTPS from an SSLApp whose responses have getX509Certificate', async function () {
      const keyFile = path.join(work, 'key.pem');
      const certFile = path.join(work, 'cert.pem');
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=127.0.0.1'], { stdio: 'ignore' });

      const app = uWS.SSLApp({ key_file_name: keyFile, cert_file_name: certFile });
      let accessorType = 'handler not reached';
      let peerCertificate: unknown;
      app.get('/probe', (res) => {
        // Not in index.d.ts: upstream exposes it on SSL responses only and may still change it.
        const getCert = (res as unknown as { getX509Certificate?: () => unknown }).getX509Certificate;
        accessorType = typeof getCert;
        if (typeof getCert === 'function') peerCertificate = getCert.call(res);
        res.end('probe ok');
      });
      const listenSocket = await new Promise<uWS.us_listen_socket>((resolve, reject) => {
        app.listen('127.0.0.1', 0, (ls) => (ls ? resolve(ls) : reject(new Error('uWS could not listen on 127.0.0.1'))));
      });
      try {
        const port = uWS.us_socket_local_port(listenSocket as uWS.us_socket);
        expect(port).to.be.greaterThan(0);
        const body = await new Promise<string>((resolve, reject) => {
          const req = https.get({ host: '127.0.0.1', port, path: '/probe', rejectUnauthorized: false, agent: false, timeout: 5000 }, (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => { text += chunk; });
            res.on('end', () => resolve(text));
            res.on('error', reject);
          });
          req.on('timeout', () => req.destroy(new Error('HTTPS request to uWS timed out')));
          req.on('error', reject);
        });
        expect(body).to.equal('probe ok');
        expect(accessorType).to.equal('function');
        expect(peerCertificate, 'no client certificate was presented').to.equal('');
      } finally {
        uWS.us_listen_socket_close(listenSocket);
        app.close();
      }
    });
  });
});
