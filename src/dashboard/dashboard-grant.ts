export { VIN_PATTERN } from '../protocol/vin.js';

export type GrantSource = 'hs256' | 'jwks' | 'tesla';

/**
 * What a verified dashboard token lets its holder see. Built only by the token verifier, after the
 * signature and claims check out.
 */
export class DashboardGrant {
  private allowed: ReadonlySet<string>;

  constructor(
    /** True for a `vins: ["*"]` token: every car this server knows. */
    readonly all: boolean,
    vins: Iterable<string>,
    /** Epoch milliseconds of the token's `exp`. */
    readonly expiresAt: number,
    readonly subject: string | null,
    readonly source: GrantSource,
    /**
     * Tesla sign-in: the VIN list came from Tesla and may be out of date, so a VIN not in it is asked
     * about again (the list is fetched anew) before the request is refused.
     */
    private readonly refresher: (() => Promise<ReadonlySet<string>>) | null = null,
    /** False for a Tesla token without `vehicle_location`: location fields are held back (location-filter.ts). */
    readonly seesLocation: boolean = true,
  ) {
    this.allowed = new Set(vins);
  }

  get vins(): ReadonlySet<string> {
    return this.allowed;
  }

  allows(vin: string): boolean {
    return this.all || this.allowed.has(vin);
  }

  /** `allows`, asking the grant's source again on a miss when it can. */
  async allowsAfterRefresh(vin: string): Promise<boolean> {
    if (this.allows(vin)) return true;
    if (this.refresher === null) return false;
    this.allowed = await this.refresher();
    return this.allowed.has(vin);
  }

  /** The `vins` of the hello message: "*" or the sorted list. */
  describeVins(): string[] | '*' {
    return this.all ? '*' : [...this.allowed].sort();
  }
}
