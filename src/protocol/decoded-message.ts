// The shapes of protobufjs-decoded telemetry messages, as far as our code reads or writes them.
// The bytes come from a car, so every field a reader relies on is typed as what protobufjs can
// produce for it (absent fields are undefined or null), never `any`.

/** Any decoded message, read generically by property name (the canonical JSON writer). */
export type DecodedMessage = { readonly [prop: string]: unknown };

/** google.protobuf.Timestamp; seconds is a Long or a number depending on its size. */
export interface DecodedTimestamp {
  seconds?: unknown;
  nanos?: unknown;
}

/** telemetry.vehicle_data.Value: only stringValue is read (Location and scientific notation). */
export interface DecodedValue {
  stringValue?: unknown;
}

export interface DecodedDatum {
  key?: number | null;
  value?: DecodedValue | null;
}

export interface DecodedVehicleData {
  vin: string;
  data: DecodedDatum[];
  createdAt?: DecodedTimestamp | null;
  isResend?: boolean | null;
}

export interface DecodedAlert {
  startedAt?: DecodedTimestamp | null;
  endedAt?: DecodedTimestamp | null;
}

export interface DecodedVehicleAlerts {
  vin: string;
  alerts: DecodedAlert[];
  createdAt?: DecodedTimestamp | null;
}

export interface DecodedVehicleErrors {
  vin: string;
  errors: unknown[];
  createdAt?: DecodedTimestamp | null;
}

export interface DecodedVehicleConnectivity {
  vin: string;
  createdAt?: DecodedTimestamp | null;
}
