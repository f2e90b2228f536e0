import { expect } from 'chai';
import { clientVersionFrom, networkInterfaceFrom } from '../../src/vehicle/connection-headers.js';
import { SocketsPerVin } from '../../src/vehicle/socket-caps.js';

describe('vehicle sockets per VIN', () => {
  it('keeps a lone socket as itself and moves between one and several without losing order', () => {
    const caps = new SocketsPerVin<string>(3);
    expect(caps.add('A', 'a1')).to.equal(null);
    expect(caps.count('A')).to.equal(1);
    expect(caps.add('A', 'a2')).to.equal(null);
    expect(caps.add('A', 'a3')).to.equal(null);
    expect(caps.count('A')).to.equal(3);
    expect(caps.add('A', 'a4')).to.equal('a1');
    caps.remove('A', 'a3');
    caps.remove('A', 'a2');
    expect(caps.count('A')).to.equal(1);
    // back to one: the next past the cap is still the oldest, a4
    expect(caps.add('A', 'a5')).to.equal(null);
    expect(caps.add('A', 'a6')).to.equal(null);
    expect(caps.add('A', 'a7')).to.equal('a4');
    caps.remove('A', 'a5');
    caps.remove('A', 'a6');
    caps.remove('A', 'a7');
    expect(caps.count('A')).to.equal(0);
    caps.remove('A', 'a7'); // gone already: a no-op
    expect(caps.count('A')).to.equal(0);
  });

  it('with a cap of one, a new socket replaces the old', () => {
    const caps = new SocketsPerVin<string>(1);
    expect(caps.add('B', 'b1')).to.equal(null);
    expect(caps.add('B', 'b2')).to.equal('b1');
    caps.remove('B', 'b1'); // the replaced one closing later removes nothing
    expect(caps.count('B')).to.equal(1);
    caps.remove('B', 'b2');
    expect(caps.count('B')).to.equal(0);
  });

  it('a socket of another VIN is never removed in its place', () => {
    const caps = new SocketsPerVin<string>(2);
    caps.add('C', 'c1');
    caps.remove('C', 'x');
    caps.remove('D', 'c1');
    expect(caps.count('C')).to.equal(1);
  });
});

describe('connection headers kept for a connection', () => {
  it('reads the network interface and version as before', () => {
    expect(networkInterfaceFrom('wifi')).to.equal('wifi');
    expect(networkInterfaceFrom('')).to.equal('');
    expect(clientVersionFrom('2024.44.25 abc123')).to.equal('2024.44.25 abc123');
    expect(clientVersionFrom('bad\nversion')).to.equal('');
    const long = 'x'.repeat(5000);
    expect(networkInterfaceFrom(long)).to.equal(long);
  });
});
