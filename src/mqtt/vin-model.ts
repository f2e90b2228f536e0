import { VIN_PATTERN } from '../protocol/vin.js';

/**
 * The model from a Tesla VIN: position 4 is the line (ISO 3779 "vehicle descriptor section" as Tesla
 * fills it). Anything else, such as a test CA's made-up device id, is just "Tesla vehicle".
 */
const MODELS: Readonly<Record<string, string>> = {
  S: 'Model S',
  X: 'Model X',
  '3': 'Model 3',
  Y: 'Model Y',
  C: 'Cybertruck',
  R: 'Roadster',
  T: 'Semi',
};

export function modelFromVin(vin: string): string {
  if (!VIN_PATTERN.test(vin)) return 'Tesla vehicle';
  return MODELS[vin[3]!] ?? 'Tesla vehicle';
}
