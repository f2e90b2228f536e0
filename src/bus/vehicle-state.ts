/**
 * What the bus side needs from the per-VIN actors, defined here where the arrow starts: the actors
 * implement these contracts, src/bus never imports src/actors.
 */

/** One field of a car's last-known state. */
export interface LastKnownValue {
  /** Canonical JSON of the Value. */
  value: string;
  /** RFC 3339: the record's created_at, or when we received it. */
  at: string;
}

/** What the owning instance knows about a car right now (its actor, read when state is written out). */
export interface LocalVehicleState {
  readonly state: ReadonlyMap<string, LastKnownValue>;
  readonly lastSeenAt: number;
  readonly connected: boolean;
  readonly stale: boolean;
  /**
   * Where the recent history keeps this car's entry (its own object, checked to be its own and still
   * kept when read), so folding a record in needs no lookup by VIN: with a record a second from each of
   * a thousand cars, that lookup missed the cache every time (BENCHMARKS.md, engineer T). Null: none.
   */
  historyCar?: object | null;
}

/** The cars this instance holds, by VIN (the actor registry). */
export interface LocalVehicles {
  get(vin: string): LocalVehicleState | undefined;
}

/**
 * Decides VIN-level connectivity when a car's sockets may be on several instances: told about every
 * socket, it resolves true for the one opening that makes the VIN connected anywhere (publish
 * CONNECTED) and the one closing that leaves it connected nowhere (publish DISCONNECTED).
 */
export interface ConnectivityArbiter {
  opened(vin: string, connectionId: string): Promise<boolean>;
  closed(vin: string, connectionId: string): Promise<boolean>;
}
