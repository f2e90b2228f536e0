/**
 * Turning VINs, topics and txids into NATS subject tokens, KV keys and message ids. Cars choose topics
 * and txids, and a device id comes from a certificate CN, so none of them can be trusted to be
 * subject-safe: a `.` would split a token, `*`/`>` are wildcards, spaces and controls are illegal.
 * Safe characters pass through unchanged (a VIN stays readable); everything else becomes
 * <escape><two hex digits> per UTF-8 byte, and the escape character itself is escaped, so the mapping
 * is reversible and two different inputs never share a token.
 */
const SAFE = /^[A-Za-z0-9_-]$/;
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

function escapeWith(text: string, escape: string): string {
  if (text === '') return escape;
  let out = '';
  for (const char of text) {
    if (SAFE.test(char)) {
      out += char;
    } else {
      for (const byte of utf8.encode(char)) out += escape + byte.toString(16).toUpperCase().padStart(2, '0');
    }
  }
  return out;
}

function unescapeWith(token: string, escape: string): string {
  if (token === escape) return '';
  const bytes: number[] = [];
  for (let i = 0; i < token.length; ) {
    if (token[i] === escape) {
      const hex = token.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(hex)) throw new Error(`not an escaped token: ${JSON.stringify(token)}`);
      bytes.push(parseInt(hex, 16));
      i += 3;
    } else {
      bytes.push(token.charCodeAt(i));
      i++;
    }
  }
  return fromUtf8.decode(new Uint8Array(bytes));
}

/** One subject token: `~` is legal in subjects and rare in VINs and topics. */
export function subjectToken(text: string): string {
  return escapeWith(text, '~');
}

export function fromSubjectToken(token: string): string {
  return unescapeWith(token, '~');
}

/** KV keys allow [-/_=.A-Za-z0-9]; `=` escapes, `.` is never produced so a key is one token. */
export function kvKey(text: string): string {
  return escapeWith(text, '=');
}

export function fromKvKey(key: string): string {
  return unescapeWith(key, '=');
}

export function recordSubject(prefix: string, vin: string, topic: string): string {
  return `${prefix}.${subjectToken(vin)}.${subjectToken(topic)}`;
}

/** Every record of one VIN, whatever its topic. */
export function vinSubjects(prefix: string, vin: string): string {
  return `${prefix}.${subjectToken(vin)}.>`;
}

/**
 * JetStream's duplicate key (Nats-Msg-Id): a car resending a frame sends the same txid and topic, so a
 * resend within the duplicate window is stored once even when it lands on another instance.
 */
export function recordMessageId(vin: string, txid: string, topic: string): string {
  return `${subjectToken(vin)}.${subjectToken(txid)}.${subjectToken(topic)}`;
}

/** Header values must not carry CR/LF; car-chosen text is percent-encoded (plain VINs stay as they are). */
export function headerValue(text: string): string {
  return encodeURIComponent(text);
}

export function fromHeaderValue(value: string): string {
  return decodeURIComponent(value);
}
