// A tiny protobuf wire-format writer for the fuzzer: it writes what the schema-driven encoder refuses to
// (unknown field numbers, unknown enum numbers, wrong wire types, broken lengths, deep groups), so the
// decoder sees bytes a real encoder would never produce.

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_BYTES = 2;
export const WIRE_START_GROUP = 3;
export const WIRE_END_GROUP = 4;
export const WIRE_FIXED32 = 5;

export function varint(value: number | bigint): Uint8Array {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) byte |= 0x80;
    out.push(byte);
  } while (v !== 0n);
  return Uint8Array.from(out);
}

export function tag(field: number, wireType: number): Uint8Array {
  return varint(BigInt(field) * 8n + BigInt(wireType));
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function bytesField(field: number, body: Uint8Array): Uint8Array {
  return concat([tag(field, WIRE_BYTES), varint(body.length), body]);
}

export function varintField(field: number, value: number | bigint): Uint8Array {
  return concat([tag(field, WIRE_VARINT), varint(value)]);
}

export function doubleField(field: number, value: number): Uint8Array {
  const body = new Uint8Array(8);
  new DataView(body.buffer).setFloat64(0, value, true);
  return concat([tag(field, WIRE_FIXED64), body]);
}

/** `depth` nested start-group tags with their end tags: recursion bait for a skipping decoder. */
export function nestedGroups(field: number, depth: number, closed: boolean): Uint8Array {
  const open = tag(field, WIRE_START_GROUP);
  const close = tag(field, WIRE_END_GROUP);
  const out = new Uint8Array(depth * (open.length + (closed ? close.length : 0)));
  let at = 0;
  for (let i = 0; i < depth; i++, at += open.length) out.set(open, at);
  if (closed) for (let i = 0; i < depth; i++, at += close.length) out.set(close, at);
  return out;
}

/** `depth` length-delimited fields each wrapping the next: nesting a schema-aware decoder may descend. */
export function nestedMessages(field: number, depth: number, innermost: Uint8Array): Uint8Array {
  let body = innermost;
  for (let i = 0; i < depth; i++) body = bytesField(field, body);
  return body;
}
