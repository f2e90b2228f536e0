/**
 * The certificates of a PEM text (a chain or CA bundle file), in file order, each its own block ending
 * in one newline; keys, comments and other blocks are left out. Node's X509Certificate parses one
 * certificate, not a bundle, so splitting is ours: this is the one place that does it.
 */
const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

export function certificateBlocks(text: string): string[] {
  return (text.replace(/\r\n/g, '\n').match(CERTIFICATE_BLOCK) ?? []).map((block) => `${block}\n`);
}
