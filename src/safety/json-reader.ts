/**
 * Reading JSON we did not write ourselves in this process: NATS bodies and KV values, files on disk,
 * Tesla's answers, browsers' messages, worker replies. `JSON.parse` and `Response.json()` give `any`,
 * which would let an unchecked shape flow on as if it were typed; here the text becomes `unknown` and
 * each shape is read field by field, a missing or wrong-typed field naming itself in a ShapeError.
 */

/** Input whose shape is not what the reader expected; `message` names the field and what it holds. */
export class ShapeError extends Error {
  override name = 'ShapeError';
}

/** JSON text as `unknown` (JSON.parse's own SyntaxError when the text does not parse). */
export function parseJson(text: string): unknown {
  return JSON.parse(text) as unknown;
}

/** A JSON object (not null, not an array). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** What a value is, for an error message (never the value itself: it may be a secret). */
export function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** `value` as an object, or a ShapeError saying what `where` held instead. */
export function objectAt(value: unknown, where: string): Record<string, unknown> {
  if (!isObject(value)) throw new ShapeError(`${where}: an object expected, got ${kindOf(value)}`);
  return value;
}

/** `value` as an array, or a ShapeError. */
export function arrayAt(value: unknown, where: string): unknown[] {
  if (!Array.isArray(value)) throw new ShapeError(`${where}: an array expected, got ${kindOf(value)}`);
  return value as unknown[];
}

/** A required string field. */
export function stringField(object: Record<string, unknown>, key: string, where: string): string {
  const value = object[key];
  if (typeof value !== 'string') throw new ShapeError(`${where}.${key}: a string expected, got ${kindOf(value)}`);
  return value;
}

/** An optional string field: undefined when absent or null, a ShapeError when of another type. */
export function optionalString(object: Record<string, unknown>, key: string, where: string): string | undefined {
  const value = object[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new ShapeError(`${where}.${key}: a string expected, got ${kindOf(value)}`);
  return value;
}

/** A required finite number field. */
export function numberField(object: Record<string, unknown>, key: string, where: string): number {
  const value = object[key];
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new ShapeError(`${where}.${key}: a finite number expected, got ${kindOf(value)}`);
  return value;
}

/** An optional finite number field: undefined when absent or null. */
export function optionalNumber(object: Record<string, unknown>, key: string, where: string): number | undefined {
  const value = object[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new ShapeError(`${where}.${key}: a finite number expected, got ${kindOf(value)}`);
  return value;
}

/** A required array of strings. */
export function stringArrayField(object: Record<string, unknown>, key: string, where: string): string[] {
  const list = arrayAt(object[key], `${where}.${key}`);
  list.forEach((item, i) => {
    if (typeof item !== 'string') throw new ShapeError(`${where}.${key}[${i}]: a string expected, got ${kindOf(item)}`);
  });
  return list as string[];
}
