import { expect } from 'chai';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SETTING_BY_ENV } from '../../src/config/schema.js';
import { apiBaseUrlChosen, fleetApiBaseUrl, trustedBaseUrl } from '../../src/tesla/region.js';

// The server and the setup commands pick the Fleet API region by the same rule.
describe('Fleet API region', () => {
  const defaultUrl = String(SETTING_BY_ENV.get('TESLA_API_BASE_URL')?.default);
  const europe = 'https://fleet-api.prd.eu.vn.cloud.tesla.com';
  const tokenFile = (apiBaseUrl: string): string => {
    const file = join(mkdtempSync(join(tmpdir(), 'tesla-region-')), 'tesla-token.json');
    writeFileSync(file, JSON.stringify({ refresh_token: 'r', api_base_url: apiBaseUrl }));
    return file;
  };

  it('takes the region stored by `auth login` while TESLA_API_BASE_URL is at its default', () => {
    expect(defaultUrl).to.match(/^https:\/\//);
    expect(apiBaseUrlChosen({ apiBaseUrl: defaultUrl })).to.equal(false);
    expect(fleetApiBaseUrl({ tesla: { apiBaseUrl: defaultUrl, accessToken: '' }, signIn: { tokenFile: tokenFile(europe) } })).to.equal(europe);
  });

  it('keeps TESLA_API_BASE_URL when the operator chose one, or uses a fixed access token, or has no token file', () => {
    const chosen = 'https://fleet-api.prd.cn.vn.cloud.tesla.cn';
    expect(apiBaseUrlChosen({ apiBaseUrl: chosen })).to.equal(true);
    expect(fleetApiBaseUrl({ tesla: { apiBaseUrl: chosen, accessToken: '' }, signIn: { tokenFile: tokenFile(europe) } })).to.equal(chosen);
    expect(fleetApiBaseUrl({ tesla: { apiBaseUrl: defaultUrl, accessToken: 'fixed' }, signIn: { tokenFile: tokenFile(europe) } })).to.equal(defaultUrl);
    expect(fleetApiBaseUrl({ tesla: { apiBaseUrl: defaultUrl, accessToken: '' }, signIn: { tokenFile: '' } })).to.equal(defaultUrl);
    expect(fleetApiBaseUrl({ tesla: { apiBaseUrl: defaultUrl, accessToken: '' }, signIn: { tokenFile: join(tmpdir(), 'no-such-token-file.json') } })).to.equal(defaultUrl);
  });

  it('never sends a token to a stored region that is not https (or loopback http)', () => {
    expect(fleetApiBaseUrl({ tesla: { apiBaseUrl: defaultUrl, accessToken: '' }, signIn: { tokenFile: tokenFile('http://evil.example.com') } })).to.equal(defaultUrl);
    expect(trustedBaseUrl('http://127.0.0.1:8080/')).to.equal('http://127.0.0.1:8080/');
    expect(trustedBaseUrl('http://localhost.evil.com/')).to.equal('');
  });
});
