import { expect } from 'chai';
import { DashboardGrant } from '../../src/dashboard/dashboard-grant.js';
import { VerifiedGrants } from '../../src/dashboard/verified-grants.js';

describe('VerifiedGrants (tokens checked moments ago)', () => {
  const grant = (expiresAt: number) => new DashboardGrant(false, ['5YJ3E7EB0LF000001'], expiresAt, 'someone', 'hs256');

  it('finds a grant by its token for a short while, never past the token expiry', () => {
    let now = 1_000_000;
    const grants = new VerifiedGrants(60_000, 100, () => now);
    const long = grant(now + 3_600_000);
    const short = grant(now + 10_000);
    grants.put('token-long', long);
    grants.put('token-short', short);
    expect(grants.get('token-long')?.grant).to.equal(long);
    expect(grants.get('token-short')?.grant).to.equal(short);
    expect(grants.get('token-other')).to.equal(undefined);
    expect(grants.get(null)).to.equal(undefined);
    now += 10_000;
    expect(grants.get('token-short'), 'expired with its token').to.equal(undefined);
    expect(grants.get('token-long')?.grant).to.equal(long);
    now += 50_000;
    expect(grants.get('token-long'), 'kept only a minute').to.equal(undefined);
  });

  it('stays bounded, dropping the oldest first', () => {
    const grants = new VerifiedGrants(60_000, 3, () => 0);
    for (let i = 0; i < 5; i++) grants.put(`token-${i}`, grant(1e12));
    expect(grants.size).to.equal(3);
    expect(grants.get('token-0')).to.equal(undefined);
    expect(grants.get('token-1')).to.equal(undefined);
    expect(grants.get('token-4')).to.not.equal(undefined);
  });

  it('forgets the grants of a sign-in session that ended', () => {
    const grants = new VerifiedGrants(60_000, 10, () => 0);
    grants.put('cookie-a', grant(1e12), 'session-a');
    grants.put('cookie-b', grant(1e12), 'session-b');
    grants.dropSession('session-a');
    expect(grants.get('cookie-a')).to.equal(undefined);
    expect(grants.get('cookie-b')?.sessionId).to.equal('session-b');
  });
});
