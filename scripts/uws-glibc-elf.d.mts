// Types for scripts/uws-glibc-elf.mjs, which stays plain JavaScript because it runs at install time.

export declare const VER_FLG_WEAK: 2;
export declare const GLIBC_238: 'GLIBC_2.38';
export declare const GLIBC_238_REPLACEMENTS: Readonly<{
  __isoc23_strtol: 'strtol';
  __isoc23_strtoul: 'strtoul';
  __isoc23_sscanf: 'sscanf';
}>;

export type ElfPatchErrorCode =
  | 'NOT_ELF'
  | 'UNSUPPORTED_ELF'
  | 'ELF_TRUNCATED'
  | 'ELF_BAD_VALUE'
  | 'ELF_BAD_STRING'
  | 'ELF_BAD_ADDRESS'
  | 'ELF_NO_DYNAMIC'
  | 'ELF_NO_SYMBOL_COUNT'
  | 'ELF_INCONSISTENT'
  | 'GLIBC_238_OTHER_SYMBOLS';

export declare class ElfPatchError extends Error {
  constructor(code: ElfPatchErrorCode, message: string);
  readonly name: 'ElfPatchError';
  readonly code: ElfPatchErrorCode;
}

export interface VersionNeed {
  /** version name, e.g. "GLIBC_2.38" */
  name: string;
  /** the .gnu.version index symbols use to refer to it */
  index: number;
  flags: number;
  weak: boolean;
}

export interface VersionNeedFile {
  /** library the versions are needed from, e.g. "libc.so.6" */
  file: string;
  versions: VersionNeed[];
}

export interface Glibc238Import {
  name: keyof typeof GLIBC_238_REPLACEMENTS;
  replacement: (typeof GLIBC_238_REPLACEMENTS)[keyof typeof GLIBC_238_REPLACEMENTS];
  /** index in .dynsym */
  symbolIndex: number;
}

export interface Glibc238Report {
  /** 'required': the loader refuses the object on glibc < 2.38; 'weak' or 'none': it does not. */
  requirement: 'required' | 'weak' | 'none';
  /** symbols bound to GLIBC_2.38 that can be rebound */
  imports: Glibc238Import[];
  /** other symbols bound to GLIBC_2.38; any of them makes the object unpatchable */
  blockers: string[];
  /** the GLIBC_2.38 entry of .gnu.version_r, or null when the object does not need it */
  versionNeed: { file: string; name: string; index: number; flags: number; flagsOffset: number } | null;
}

export interface Glibc238PatchResult {
  /** names of the imports that were rebound (empty when nothing needed doing) */
  patched: string[];
  /** whether the GLIBC_2.38 requirement was marked weak by this call */
  weakened: boolean;
}

/** Lists the object's version requirements (.gnu.version_r). Throws ElfPatchError on malformed input. */
export declare function readVersionNeeds(buf: Uint8Array): VersionNeedFile[];

/** Describes the GLIBC_2.38 dependency of a 64-bit little-endian shared object. */
export declare function findGlibc238Imports(buf: Uint8Array): Glibc238Report;

/**
 * Rebinds the GLIBC_2.38 imports in place (file size unchanged). Validates before editing: on
 * ElfPatchError the buffer is untouched. Idempotent: a patched buffer comes back byte-identical.
 */
export declare function patchGlibc238Imports(buf: Uint8Array): Glibc238PatchResult;
