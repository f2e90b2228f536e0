import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { usePresentOnlyOneofSetters } from './oneof-setter.js';
import type { KnownTopic } from './topics.js';

/** The resolved schema of proto/ and the message types the server decodes and encodes. */
export interface ProtoSchema {
  readonly root: protobuf.Root;
  readonly payload: protobuf.Type;
  readonly value: protobuf.Type;
  readonly location: protobuf.Type;
  readonly alerts: protobuf.Type;
  readonly errors: protobuf.Type;
  readonly connectivity: protobuf.Type;
  /** Field enum names by number (for config building and validation). */
  readonly fieldNames: readonly string[];
}

/** The payload message type of each topic the server decodes. */
export const RECORD_TYPES: Readonly<Record<KnownTopic, string>> = Object.freeze({
  V: 'telemetry.vehicle_data.Payload',
  alerts: 'telemetry.vehicle_alerts.VehicleAlerts',
  errors: 'telemetry.vehicle_error.VehicleErrors',
  connectivity: 'telemetry.vehicle_connectivity.VehicleConnectivity',
});

let loaded: ProtoSchema | undefined;

/**
 * proto/, read and resolved on first use rather than as a side effect of importing the decoder or the
 * encoder. The decode workers build their transcoder from it when they load (decode-batch.ts), so no
 * frame waits for it.
 */
export function protoSchema(): ProtoSchema {
  return (loaded ??= loadProtoSchema());
}

/** Field enum names by number; the number as text where the schema has no name. */
export function fieldNames(): readonly string[] {
  return protoSchema().fieldNames;
}

/** A fresh, resolved root of proto/ with protobufjs's stock constructors (protoSchema patches its own). */
export function readProtoRoot(): protobuf.Root {
  const protoDir = findProtoDir();
  const root = protobuf.loadSync(
    readdirSync(protoDir)
      .filter((f) => f.endsWith('.proto'))
      .sort()
      .map((f) => join(protoDir, f)),
  );
  root.resolveAll();
  return root;
}

function loadProtoSchema(): ProtoSchema {
  const root = readProtoRoot();
  usePresentOnlyOneofSetters(root);
  return {
    root,
    payload: root.lookupType(RECORD_TYPES.V),
    value: root.lookupType('telemetry.vehicle_data.Value'),
    location: root.lookupType('telemetry.vehicle_data.LocationValue'),
    alerts: root.lookupType(RECORD_TYPES.alerts),
    errors: root.lookupType(RECORD_TYPES.errors),
    connectivity: root.lookupType(RECORD_TYPES.connectivity),
    fieldNames: Object.freeze(namesByNumber(root.lookupEnum('telemetry.vehicle_data.Field'))),
  };
}

/** The project folder holding proto/, found from this module's own location (src/ or dist/src/). */
function findProtoDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'proto');
    if (existsSync(join(candidate, 'vehicle_data.proto'))) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find proto/vehicle_data.proto above the schema module');
    dir = parent;
  }
}

function namesByNumber(e: protobuf.Enum): string[] {
  const names: string[] = [];
  for (const [name, num] of Object.entries(e.values)) if (num >= 0 && names[num] === undefined) names[num] = name;
  return names;
}
