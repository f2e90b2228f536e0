// In-place ELF editor that lets the uWebSockets.js v20.57.0 Linux binaries load on glibc < 2.38.
//
// Plain JavaScript on purpose: it runs from `postinstall`, before TypeScript is compiled, on machines
// that have neither patchelf nor a C compiler. Every edit overwrites bytes in place, so the file size
// and every offset and address in the object stay exactly as the upstream linker laid them out.
//
// The binaries import three C23 variants, versioned GLIBC_2.38:
//   __isoc23_strtol, __isoc23_strtoul, __isoc23_sscanf
// They differ from the classic functions only in accepting `0b`/`0B` binary literals (strtol/strtoul
// with base 0 or 2, sscanf's %i). uWS does not rely on that, and its HTTP parser does not call them at
// all. In v20.57.0 the call sites are: strtol base 10 on the UWS_HTTP_MAX_HEADERS_SIZE and
// LSQUIC_LOG_SECRETS environment variables, strtoul base 0 on libstdc++'s GLIBCXX_TUNABLES
// "obj_count", and two sscanf calls with "%lu" and "%lx" formats (no %i; and no %a, the only
// conversion where glibc's plain sscanf differs from its C99 one). Binding them to the classic
// functions therefore changes nothing a peer can influence.
//
// The edit, per symbol: point its .dynstr name at the tail of its own string ("__isoc23_strtol" + 8 is
// "strtol"; string tables allow that), set its .gnu.version entry to 1 (unversioned: binds to libc's
// default version), and finally mark the GLIBC_2.38 version-needed entry weak so the loader does not
// refuse the object for a version nothing references any more.

const ELF_MAGIC = 0x464c457f; // "\x7fELF" read little-endian
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const ET_DYN = 3;
const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const SHT_DYNSYM = 11;
const SHN_UNDEF = 0;

const DT_NULL = 0;
const DT_HASH = 4;
const DT_STRTAB = 5;
const DT_SYMTAB = 6;
const DT_STRSZ = 10;
const DT_SYMENT = 11;
const DT_GNU_HASH = 0x6ffffef5;
const DT_VERSYM = 0x6ffffff0;
const DT_VERNEED = 0x6ffffffe;
const DT_VERNEEDNUM = 0x6fffffff;

const SYM_SIZE = 24;
const VERNEED_SIZE = 16;
const VERNAUX_SIZE = 16;
const VERSYM_HIDDEN_MASK = 0x7fff;
const VER_NDX_GLOBAL = 1;

export const VER_FLG_WEAK = 0x2;
export const GLIBC_238 = 'GLIBC_2.38';

/** C23 import -> classic glibc function it is rebound to (always a suffix of the import's name). */
export const GLIBC_238_REPLACEMENTS = Object.freeze({
  __isoc23_strtol: 'strtol',
  __isoc23_strtoul: 'strtoul',
  __isoc23_sscanf: 'sscanf',
});

export class ElfPatchError extends Error {
  /**
   * @param {string} code machine-readable reason
   * @param {string} message
   */
  constructor(code, message) {
    super(message);
    this.name = 'ElfPatchError';
    this.code = code;
  }
}

/** @param {Uint8Array} buf */
function viewOf(buf) {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

/**
 * @param {DataView} dv
 * @param {number} offset
 * @param {number} size
 * @param {string} what
 */
function requireRange(dv, offset, size, what) {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(size) || offset < 0 || size < 0 ||
      offset + size > dv.byteLength) {
    throw new ElfPatchError('ELF_TRUNCATED', `ELF ${what} lies outside the file (offset ${offset}, size ${size}, file ${dv.byteLength})`);
  }
}

/** @param {DataView} dv @param {number} offset */
function u64(dv, offset) {
  const v = dv.getBigUint64(offset, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new ElfPatchError('ELF_BAD_VALUE', `ELF field at ${offset} is too large (${v})`);
  }
  return Number(v);
}

/**
 * Reads a NUL-terminated string from the dynamic string table.
 * @param {Uint8Array} buf
 * @param {{offset: number, size: number}} strtab
 * @param {number} index
 */
function readString(buf, strtab, index) {
  if (index >= strtab.size) {
    throw new ElfPatchError('ELF_BAD_STRING', `string index ${index} is outside .dynstr (size ${strtab.size})`);
  }
  const start = strtab.offset + index;
  const limit = strtab.offset + strtab.size;
  let end = start;
  while (end < limit && buf[end] !== 0) end++;
  if (end === limit) {
    throw new ElfPatchError('ELF_BAD_STRING', `string at .dynstr index ${index} is not terminated`);
  }
  return Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString('latin1');
}

/**
 * Parses just enough of a 64-bit little-endian shared object to reach its dynamic symbols and
 * symbol versioning tables. Everything is located through the dynamic segment (what the loader
 * itself uses); the section headers, when present, only supply the symbol count and must agree.
 * @param {Uint8Array} buf
 */
function parseDynamic(buf) {
  const dv = viewOf(buf);
  if (dv.byteLength < 64 || dv.getUint32(0, true) !== ELF_MAGIC) {
    throw new ElfPatchError('NOT_ELF', 'not an ELF file');
  }
  if (buf[4] !== ELFCLASS64 || buf[5] !== ELFDATA2LSB) {
    throw new ElfPatchError('UNSUPPORTED_ELF', 'only 64-bit little-endian ELF objects are supported');
  }
  if (dv.getUint16(16, true) !== ET_DYN) {
    throw new ElfPatchError('UNSUPPORTED_ELF', 'not a shared object (ET_DYN)');
  }

  const phoff = u64(dv, 32);
  const shoff = u64(dv, 40);
  const phentsize = dv.getUint16(54, true);
  const phnum = dv.getUint16(56, true);
  const shentsize = dv.getUint16(58, true);
  const shnum = dv.getUint16(60, true);
  if (phentsize < 56) throw new ElfPatchError('ELF_BAD_VALUE', `program header entry size ${phentsize} is too small`);
  requireRange(dv, phoff, phentsize * phnum, 'program header table');

  /** @type {{vaddr: number, offset: number, filesz: number}[]} */
  const loads = [];
  let dynamic = null;
  for (let i = 0; i < phnum; i++) {
    const p = phoff + i * phentsize;
    const type = dv.getUint32(p, true);
    if (type === PT_LOAD) {
      loads.push({ offset: u64(dv, p + 8), vaddr: u64(dv, p + 16), filesz: u64(dv, p + 32) });
    } else if (type === PT_DYNAMIC) {
      dynamic = { offset: u64(dv, p + 8), filesz: u64(dv, p + 32) };
    }
  }
  if (!dynamic) throw new ElfPatchError('ELF_NO_DYNAMIC', 'no PT_DYNAMIC segment');
  requireRange(dv, dynamic.offset, dynamic.filesz, 'dynamic segment');

  /** @param {number} vaddr @param {number} size @param {string} what */
  const fileOffset = (vaddr, size, what) => {
    for (const l of loads) {
      if (vaddr >= l.vaddr && vaddr + size <= l.vaddr + l.filesz) {
        const off = l.offset + (vaddr - l.vaddr);
        requireRange(dv, off, size, what);
        return off;
      }
    }
    throw new ElfPatchError('ELF_BAD_ADDRESS', `${what} (address 0x${vaddr.toString(16)}, ${size} bytes) is not inside a loaded segment`);
  };

  /** @type {Map<number, number>} */
  const tags = new Map();
  for (let p = dynamic.offset; p + 16 <= dynamic.offset + dynamic.filesz; p += 16) {
    const tag = dv.getBigInt64(p, true);
    if (tag === BigInt(DT_NULL)) break;
    if (tag < 0n || tag > 0xffffffffn) continue;
    const t = Number(tag);
    if (!tags.has(t)) tags.set(t, u64(dv, p + 8));
  }
  /** @type {[number, string][]} */
  const required = [[DT_SYMTAB, 'DT_SYMTAB'], [DT_STRTAB, 'DT_STRTAB'], [DT_STRSZ, 'DT_STRSZ']];
  for (const [tag, name] of required) {
    if (!tags.has(tag)) throw new ElfPatchError('ELF_NO_DYNAMIC', `dynamic segment has no ${name}`);
  }
  const syment = tags.get(DT_SYMENT) ?? SYM_SIZE;
  if (syment !== SYM_SIZE) throw new ElfPatchError('ELF_BAD_VALUE', `DT_SYMENT is ${syment}, expected ${SYM_SIZE}`);

  const strsz = /** @type {number} */ (tags.get(DT_STRSZ));
  const strtab = { offset: fileOffset(/** @type {number} */ (tags.get(DT_STRTAB)), strsz, '.dynstr'), size: strsz };
  const symtabAddr = /** @type {number} */ (tags.get(DT_SYMTAB));
  const symCount = countDynamicSymbols(dv, symtabAddr, { shoff, shentsize, shnum }, tags, fileOffset);
  const symtab = { offset: fileOffset(symtabAddr, symCount * SYM_SIZE, '.dynsym'), count: symCount };

  const versym = tags.has(DT_VERSYM)
    ? { offset: fileOffset(/** @type {number} */ (tags.get(DT_VERSYM)), symCount * 2, '.gnu.version') }
    : null;

  const verneed = [];
  if (tags.has(DT_VERNEED)) {
    const num = tags.get(DT_VERNEEDNUM) ?? 0;
    let p = fileOffset(/** @type {number} */ (tags.get(DT_VERNEED)), VERNEED_SIZE, '.gnu.version_r');
    for (let i = 0; i < num; i++) {
      requireRange(dv, p, VERNEED_SIZE, 'version-needed entry');
      const cnt = dv.getUint16(p + 2, true);
      const file = readString(buf, strtab, dv.getUint32(p + 4, true));
      const auxStart = p + dv.getUint32(p + 8, true);
      const next = dv.getUint32(p + 12, true);
      const versions = [];
      let a = auxStart;
      for (let j = 0; j < cnt; j++) {
        requireRange(dv, a, VERNAUX_SIZE, 'version-needed aux entry');
        versions.push({
          name: readString(buf, strtab, dv.getUint32(a + 8, true)),
          index: dv.getUint16(a + 6, true),
          flags: dv.getUint16(a + 4, true),
          flagsOffset: a + 4,
        });
        const auxNext = dv.getUint32(a + 12, true);
        if (auxNext === 0) {
          if (j !== cnt - 1) throw new ElfPatchError('ELF_BAD_VALUE', `version-needed entry for ${file} ends early`);
          break;
        }
        a += auxNext;
      }
      verneed.push({ file, versions });
      if (next === 0) {
        if (i !== num - 1) throw new ElfPatchError('ELF_BAD_VALUE', 'version-needed list ends before DT_VERNEEDNUM');
        break;
      }
      p += next;
    }
  }

  return { buf, dv, strtab, symtab, versym, verneed };
}

/**
 * The dynamic segment does not record how many symbols there are. Prefer the .dynsym section header
 * (checked against DT_SYMTAB); without section headers fall back to the hash tables.
 * @param {DataView} dv
 * @param {number} symtabAddr
 * @param {{shoff: number, shentsize: number, shnum: number}} sh
 * @param {Map<number, number>} tags
 * @param {(vaddr: number, size: number, what: string) => number} fileOffset
 */
function countDynamicSymbols(dv, symtabAddr, sh, tags, fileOffset) {
  if (sh.shoff !== 0 && sh.shnum > 0 && sh.shentsize >= 64) {
    requireRange(dv, sh.shoff, sh.shentsize * sh.shnum, 'section header table');
    for (let i = 0; i < sh.shnum; i++) {
      const s = sh.shoff + i * sh.shentsize;
      if (dv.getUint32(s + 4, true) !== SHT_DYNSYM) continue;
      const addr = u64(dv, s + 16);
      const size = u64(dv, s + 32);
      if (addr !== symtabAddr) {
        throw new ElfPatchError('ELF_INCONSISTENT', '.dynsym section header disagrees with DT_SYMTAB');
      }
      if (size % SYM_SIZE !== 0) throw new ElfPatchError('ELF_BAD_VALUE', `.dynsym size ${size} is not a multiple of ${SYM_SIZE}`);
      return size / SYM_SIZE;
    }
  }
  if (tags.has(DT_HASH)) {
    const off = fileOffset(/** @type {number} */ (tags.get(DT_HASH)), 8, '.hash');
    return dv.getUint32(off + 4, true); // nchain equals the number of symbols
  }
  if (tags.has(DT_GNU_HASH)) {
    const hdr = fileOffset(/** @type {number} */ (tags.get(DT_GNU_HASH)), 16, '.gnu.hash');
    const nbuckets = dv.getUint32(hdr, true);
    const symoffset = dv.getUint32(hdr + 4, true);
    const bloomSize = dv.getUint32(hdr + 8, true);
    const bucketsAddr = /** @type {number} */ (tags.get(DT_GNU_HASH)) + 16 + bloomSize * 8;
    const buckets = fileOffset(bucketsAddr, nbuckets * 4, '.gnu.hash buckets');
    let last = 0;
    for (let i = 0; i < nbuckets; i++) last = Math.max(last, dv.getUint32(buckets + i * 4, true));
    if (last < symoffset) return symoffset;
    const chainsAddr = bucketsAddr + nbuckets * 4;
    for (;;) {
      const c = fileOffset(chainsAddr + (last - symoffset) * 4, 4, '.gnu.hash chain');
      if (dv.getUint32(c, true) & 1) return last + 1;
      last++;
    }
  }
  throw new ElfPatchError('ELF_NO_SYMBOL_COUNT', 'cannot determine the number of dynamic symbols (no .dynsym header, no hash table)');
}

/**
 * @param {ReturnType<typeof parseDynamic>} elf
 * @param {number} index
 */
function readSymbol(elf, index) {
  const p = elf.symtab.offset + index * SYM_SIZE;
  const nameIndex = elf.dv.getUint32(p, true);
  return {
    index,
    offset: p,
    nameIndex,
    name: readString(elf.buf, elf.strtab, nameIndex),
    shndx: elf.dv.getUint16(p + 6, true),
    version: elf.versym ? elf.dv.getUint16(elf.versym.offset + index * 2, true) & VERSYM_HIDDEN_MASK : VER_NDX_GLOBAL,
  };
}

/**
 * Lists the object's version requirements (.gnu.version_r), e.g. to check that no non-weak
 * GLIBC_2.38 requirement remains.
 * @param {Uint8Array} buf
 * @returns {{file: string, versions: {name: string, index: number, flags: number, weak: boolean}[]}[]}
 */
export function readVersionNeeds(buf) {
  return parseDynamic(buf).verneed.map(({ file, versions }) => ({
    file,
    versions: versions.map(({ name, index, flags }) => ({ name, index, flags, weak: (flags & VER_FLG_WEAK) !== 0 })),
  }));
}

/**
 * Describes the GLIBC_2.38 dependency of a shared object.
 * @param {Uint8Array} buf
 */
export function findGlibc238Imports(buf) {
  const elf = parseDynamic(buf);
  return describe(elf);
}

/** @param {ReturnType<typeof parseDynamic>} elf */
function describe(elf) {
  /** @type {{file: string, name: string, index: number, flags: number, flagsOffset: number} | null} */
  let need = null;
  for (const n of elf.verneed) {
    for (const v of n.versions) {
      if (v.name !== GLIBC_238) continue;
      if (need) throw new ElfPatchError('ELF_INCONSISTENT', `${GLIBC_238} is required twice (${need.file}, ${n.file})`);
      need = { file: n.file, ...v };
    }
  }
  /** @type {{name: string, replacement: string, symbolIndex: number}[]} */
  const imports = [];
  /** @type {string[]} */
  const blockers = [];
  if (need && elf.versym) {
    for (let i = 1; i < elf.symtab.count; i++) {
      const sym = readSymbol(elf, i);
      if (sym.version !== need.index) continue;
      const replacement = Object.hasOwn(GLIBC_238_REPLACEMENTS, sym.name)
        ? GLIBC_238_REPLACEMENTS[/** @type {keyof typeof GLIBC_238_REPLACEMENTS} */ (sym.name)]
        : undefined;
      if (replacement && sym.shndx === SHN_UNDEF) {
        imports.push({ name: sym.name, replacement, symbolIndex: i });
      } else {
        blockers.push(sym.name);
      }
    }
  }
  const requirement = !need ? 'none' : (need.flags & VER_FLG_WEAK) !== 0 ? 'weak' : 'required';
  return {
    /** 'required': the loader refuses the object on glibc < 2.38; 'weak' or 'none': it does not. */
    requirement,
    /** symbols bound to GLIBC_2.38 that this module knows how to rebind */
    imports,
    /** other symbols bound to GLIBC_2.38; any of them makes the object unpatchable */
    blockers,
    /** the GLIBC_2.38 entry of .gnu.version_r, or null when the object does not need it */
    versionNeed: need,
  };
}

/**
 * Rebinds the GLIBC_2.38 imports to their classic glibc functions, editing `buf` in place.
 * Checks everything before changing a byte: on error the buffer is untouched. Running it on an
 * already patched buffer changes nothing and returns `patched: []`.
 * @param {Uint8Array} buf
 * @returns {{patched: string[], weakened: boolean}}
 */
export function patchGlibc238Imports(buf) {
  const elf = parseDynamic(buf);
  const found = describe(elf);
  if (!found.versionNeed) return { patched: [], weakened: false };
  if (found.blockers.length > 0) {
    throw new ElfPatchError('GLIBC_238_OTHER_SYMBOLS',
      `${GLIBC_238} is also needed by ${found.blockers.join(', ')}; rebinding only ${Object.keys(GLIBC_238_REPLACEMENTS).join(', ')} would leave them unresolvable, so the file was not patched`);
  }
  const edits = found.imports.map((imp) => {
    const sym = readSymbol(elf, imp.symbolIndex);
    const newNameIndex = sym.nameIndex + (imp.name.length - imp.replacement.length);
    // readString re-reads the tail so the edit is proven against the file, not just against the map.
    if (readString(buf, elf.strtab, newNameIndex) !== imp.replacement) {
      throw new ElfPatchError('ELF_INCONSISTENT', `tail of ${imp.name} in .dynstr is not ${imp.replacement}`);
    }
    return { sym, newNameIndex };
  });

  for (const { sym, newNameIndex } of edits) {
    elf.dv.setUint32(sym.offset, newNameIndex, true);
    elf.dv.setUint16(/** @type {{offset: number}} */ (elf.versym).offset + sym.index * 2, VER_NDX_GLOBAL, true);
  }
  const weakened = (found.versionNeed.flags & VER_FLG_WEAK) === 0;
  if (weakened) elf.dv.setUint16(found.versionNeed.flagsOffset, found.versionNeed.flags | VER_FLG_WEAK, true);
  return { patched: found.imports.map((i) => i.name), weakened };
}
