import { expect } from 'chai';
import client from 'prom-client';
import { silentLogger } from '../../src/log/logger.js';
import { HandlerBoundary } from '../../src/safety/handler-boundary.js';
import { SafetyMetrics } from '../../src/safety/safety-metrics.js';

async function count(metrics: SafetyMetrics, labels: Record<string, string>): Promise<number> {
  const { values } = await metrics.handlerErrors.get();
  return values.filter((v) => Object.entries(labels).every(([k, want]) => (v.labels as Record<string, unknown>)[k] === want)).reduce((sum, v) => sum + v.value, 0);
}

describe('handler boundary', () => {
  it('keeps a throw inside: counted by listener and handler, the client answered', async () => {
    const metrics = new SafetyMetrics(new client.Registry());
    const boundary = new HandlerBoundary('dashboard', metrics, silentLogger());
    let answered = 0;
    expect(() => boundary.run('open', () => { throw new RangeError('Invalid time value'); }, () => answered++)).to.not.throw();
    expect(answered).to.equal(1);
    expect(await count(metrics, { listener: 'dashboard', handler: 'open' })).to.equal(1);
  });

  it('swallows a throw of the answer too (the client may be gone), and runs a clean body untouched', async () => {
    const metrics = new SafetyMetrics(new client.Registry());
    const boundary = new HandlerBoundary('vehicle', metrics, silentLogger());
    expect(() => boundary.run('message', () => { throw new Error('x'); }, () => { throw new Error('closed'); })).to.not.throw();
    let ran = false;
    boundary.wrap('timer', (n: number) => (ran = n === 3))(3);
    expect(ran).to.equal(true);
    expect(await count(metrics, { listener: 'vehicle' })).to.equal(1);
  });
});
