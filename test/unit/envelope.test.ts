import { expect } from 'chai';
import {
  ENVELOPE_SPAN,
  ENVELOPE_SPAN_COUNT,
  EnvelopeError,
  INCORRECT_MESSAGE_FORMAT,
  MESSAGE_TYPE_NONE,
  MESSAGE_TYPE_STREAM,
  MESSAGE_TYPE_STREAM_ACK,
  readEnvelope,
  readEnvelopeSpans,
  readEnvelopeSpansChecked,
  readSpansDirect,
  writeAck,
  writeAckFromSpans,
  writeErrorReply,
  writeStreamEnvelope,
  type Envelope,
} from '../../src/protocol/envelope.js';
import { mulberry32 } from '../../src/sim/seeded-random.js';

const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString('latin1');
const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));

/** The reference server's ack for txid de9a74cb3a9245f4bf5502-000000001, topic V (protocol facts, section 3). */
const GOLDEN_ACK = new Uint8Array(
  Buffer.from(
    '1400000000000e001800140010000f00080004000e00000014000000480000000000000510000000140000000000000000000000010000005600000020000000646539613734636233613932343566346266353530322d303030303030303031000000000000000000000000',
    'hex',
  ),
);
const GOLDEN_TXID = 'de9a74cb3a9245f4bf5502-000000001';
/** Where the golden ack keeps its message_type byte: table at 20 + vtable entry 15. */
const GOLDEN_TYPE_AT = 35;


function expectEnvelopeError(frame: Uint8Array, kind?: string): EnvelopeError {
  try {
    readEnvelope(frame);
  } catch (error) {
    expect(error, 'only EnvelopeError may escape').to.be.instanceOf(EnvelopeError);
    if (kind !== undefined) expect((error as EnvelopeError).kind).to.equal(kind);
    return error as EnvelopeError;
  }
  expect.fail(`frame ${Buffer.from(frame).toString('hex')} was accepted`);
}

/** Either an EnvelopeError, or a result whose every view lies inside the frame. */
function readOrReject(frame: Uint8Array): Envelope | null {
  try {
    const envelope = readEnvelope(frame);
    const views = [envelope.txid, envelope.topic, envelope.messageId];
    if (envelope.stream) {
      views.push(envelope.stream.senderId, envelope.stream.payload, envelope.stream.deviceType, envelope.stream.deviceId);
    }
    for (const view of views) {
      if (view.length === 0) continue;
      expect(view.buffer).to.equal(frame.buffer);
      expect(view.byteOffset).to.be.at.least(frame.byteOffset);
      expect(view.byteOffset + view.length).to.be.at.most(frame.byteOffset + frame.length);
    }
    return envelope;
  } catch (error) {
    if (!(error instanceof EnvelopeError)) {
      throw new Error(`non-EnvelopeError for ${Buffer.from(frame).toString('hex')}: ${String(error)}`);
    }
    return null;
  }
}

/** A root table written by hand: `slots` are the vtable entries (field offsets) in field order. */
function handMadeEnvelope(slots: number[], body: (frame: Uint8Array, table: number) => void, size = 64): Uint8Array {
  const frame = new Uint8Array(size);
  const view = new DataView(frame.buffer);
  const vtable = 4;
  const vtableSize = 4 + 2 * slots.length;
  const table = (vtable + vtableSize + 3) & ~3;
  view.setUint32(0, table, true);
  view.setUint16(vtable, vtableSize, true);
  view.setUint16(vtable + 2, 16, true);
  slots.forEach((offset, i) => view.setUint16(vtable + 4 + 2 * i, offset, true));
  view.setInt32(table, table - vtable, true);
  body(frame, table);
  return frame;
}

function putVector(frame: Uint8Array, fieldAt: number, vectorAt: number, content: string): void {
  const view = new DataView(frame.buffer, frame.byteOffset);
  view.setUint32(fieldAt, vectorAt - fieldAt, true);
  view.setUint32(vectorAt, content.length, true);
  frame.set(bytes(content), vectorAt + 4);
}

describe('envelope', () => {
  describe('replies', () => {
    it('parses the reference golden ack to type 5 with its txid and topic', () => {
      expect(GOLDEN_ACK.length).to.equal(108);
      const ack = readEnvelope(GOLDEN_ACK);
      expect(ack.messageType).to.equal(MESSAGE_TYPE_STREAM_ACK);
      expect(text(ack.txid)).to.equal(GOLDEN_TXID);
      expect(text(ack.topic)).to.equal('V');
      expect(ack.messageId.length).to.equal(0);
      expect(ack.stream).to.equal(null);
    });

    it('writes an ack that reads back as the golden ack does', () => {
      const golden = readEnvelope(GOLDEN_ACK);
      const ours = readEnvelope(writeAck(golden.txid, golden.topic));
      expect(ours.messageType).to.equal(golden.messageType);
      expect(text(ours.txid)).to.equal(text(golden.txid));
      expect(text(ours.topic)).to.equal(text(golden.topic));
      expect(text(ours.messageId)).to.equal(text(golden.messageId));
      expect(ours.stream).to.equal(null);
    });

    it('acks with the received txid and topic, type 5 and an empty message_id', () => {
      const frame = writeStreamEnvelope({ txid: 'abc-000000042', topic: 'alerts', payload: bytes('x'), messageId: 'mid-1' });
      const received = readEnvelope(frame);
      const ack = readEnvelope(writeAck(received.txid, received.topic));
      expect(ack.messageType).to.equal(MESSAGE_TYPE_STREAM_ACK);
      expect(text(ack.txid)).to.equal('abc-000000042');
      expect(text(ack.topic)).to.equal('alerts');
      expect(ack.messageId.length).to.equal(0);
    });

    it('writes every txid length with the vectors NUL-terminated and 4-aligned', () => {
      for (let n = 0; n <= 40; n++) {
        const txid = bytes('t'.repeat(n));
        const topic = bytes('connectivity'.slice(0, n % 13));
        const raw = writeAck(txid, topic);
        expect(raw.length % 4).to.equal(0);
        const ack = readEnvelope(raw);
        expect(text(ack.txid)).to.equal(text(txid));
        expect(text(ack.topic)).to.equal(text(topic));
        expect(ack.txid.byteOffset % 4).to.equal(0);
        expect(raw[ack.txid.byteOffset + n]).to.equal(0);
        expect(raw[ack.topic.byteOffset + topic.length]).to.equal(0);
      }
    });

    it('writes an error reply carrying the txid and the incorrect-message-format text', () => {
      const reply = readEnvelope(writeErrorReply(bytes(GOLDEN_TXID)));
      expect(reply.messageType).to.equal(MESSAGE_TYPE_STREAM);
      expect(text(reply.txid)).to.equal(GOLDEN_TXID);
      expect(reply.topic.length).to.equal(0);
      expect(reply.messageId.length).to.equal(0);
      expect(reply.stream).to.not.equal(null);
      expect(text(reply.stream!.payload)).to.equal(INCORRECT_MESSAGE_FORMAT);
      expect(text(reply.stream!.payload)).to.equal('incorrect message format');
    });

    it('writes an error reply with an empty txid for an unreadable message', () => {
      const reply = readEnvelope(writeErrorReply(new Uint8Array(0)));
      expect(reply.txid.length).to.equal(0);
      expect(text(reply.stream!.payload)).to.equal(INCORRECT_MESSAGE_FORMAT);
    });

    it('returns independent buffers, so a reply outlives the frame it answers', () => {
      const frame = writeStreamEnvelope({ txid: 'keep-me', topic: 'V', payload: bytes('p') });
      const envelope = readEnvelope(frame);
      const ack = writeAck(envelope.txid, envelope.topic);
      frame.fill(0);
      expect(text(readEnvelope(ack).txid)).to.equal('keep-me');
      expect(ack.byteOffset).to.equal(0);
      expect(ack.buffer.byteLength).to.equal(ack.length);
    });
  });

  describe('stream envelopes', () => {
    it('round-trips every field', () => {
      const payload = new Uint8Array([0, 1, 2, 250, 255, 0]);
      const frame = writeStreamEnvelope({
        txid: 'de9a74cb3a9245f4bf5502-000000007',
        topic: bytes('V'),
        payload,
        messageId: 'message-7',
        createdAt: 4_000_000_000,
        senderId: 'vehicle_device.5YJ3E1EA9PF000001',
        deviceType: bytes('vehicle_device'),
        deviceId: '5YJ3E1EA9PF000001',
        deliveredAtEpochMs: 0xffff_ffff_ffff_fffen,
      });
      const envelope = readEnvelope(frame);
      expect(envelope.messageType).to.equal(MESSAGE_TYPE_STREAM);
      expect(text(envelope.txid)).to.equal('de9a74cb3a9245f4bf5502-000000007');
      expect(text(envelope.topic)).to.equal('V');
      expect(text(envelope.messageId)).to.equal('message-7');
      const stream = envelope.stream!;
      expect(stream.createdAt).to.equal(4_000_000_000);
      expect(text(stream.senderId)).to.equal('vehicle_device.5YJ3E1EA9PF000001');
      expect([...stream.payload]).to.deep.equal([...payload]);
      expect(text(stream.deviceType)).to.equal('vehicle_device');
      expect(text(stream.deviceId)).to.equal('5YJ3E1EA9PF000001');
      expect(stream.deliveredAtEpochMs).to.equal(0xffff_ffff_ffff_fffen);
    });

    it('reads absent fields as empty bytes and zero', () => {
      const envelope = readEnvelope(writeStreamEnvelope({ txid: '', topic: 'V', payload: new Uint8Array(0) }));
      expect(envelope.txid.length).to.equal(0);
      expect(envelope.messageId.length).to.equal(0);
      const stream = envelope.stream!;
      expect(stream.createdAt).to.equal(0);
      expect(stream.senderId.length).to.equal(0);
      expect(stream.payload.length).to.equal(0);
      expect(stream.deviceType.length).to.equal(0);
      expect(stream.deviceId.length).to.equal(0);
      expect(stream.deliveredAtEpochMs).to.equal(0n);
    });

    it('returns views into the frame, also when the frame is itself a view', () => {
      const inner = writeStreamEnvelope({ txid: 'view-1', topic: 'V', payload: bytes('payload-bytes') });
      const outer = new Uint8Array(inner.length + 13);
      outer.set(inner, 7);
      const frame = outer.subarray(7, 7 + inner.length);
      const envelope = readEnvelope(frame);
      expect(text(envelope.stream!.payload)).to.equal('payload-bytes');
      expect(envelope.stream!.payload.buffer).to.equal(outer.buffer);
      outer[envelope.stream!.payload.byteOffset] = 'P'.charCodeAt(0);
      expect(text(envelope.stream!.payload)).to.equal('Payload-bytes');
    });

    it('rejects values the wire cannot carry', () => {
      expect(() => writeStreamEnvelope({ txid: 't', topic: 'V', payload: bytes('p'), createdAt: -1 })).to.throw(RangeError);
      expect(() => writeStreamEnvelope({ txid: 't', topic: 'V', payload: bytes('p'), createdAt: 2 ** 32 })).to.throw(RangeError);
      expect(() => writeStreamEnvelope({ txid: 't', topic: 'V', payload: bytes('p'), createdAt: 1.5 })).to.throw(RangeError);
      expect(() => writeStreamEnvelope({ txid: 't', topic: 'V', payload: bytes('p'), deliveredAtEpochMs: -1n })).to.throw(RangeError);
      expect(() => writeStreamEnvelope({ txid: 't', topic: 'V', payload: bytes('p'), deliveredAtEpochMs: 1n << 64n })).to.throw(RangeError);
    });
  });

  describe('vtable-aware reading', () => {
    it('treats fields beyond a short vtable as absent', () => {
      // vtable lists txid and topic only: message_type, message and message_id are absent
      const frame = handMadeEnvelope([4, 8], (f, table) => {
        putVector(f, table + 4, 32, 'short-vt');
        putVector(f, table + 8, 48, 'V');
      });
      const envelope = readEnvelope(frame);
      expect(text(envelope.txid)).to.equal('short-vt');
      expect(text(envelope.topic)).to.equal('V');
      expect(envelope.messageType).to.equal(MESSAGE_TYPE_NONE);
      expect(envelope.messageId.length).to.equal(0);
      expect(envelope.stream).to.equal(null);
    });

    it('reads fields laid out in another order than our writer uses', () => {
      // topic before txid in the table, with a zero (absent) slot for message
      const frame = handMadeEnvelope([8, 4, 12, 0], (f, table) => {
        putVector(f, table + 8, 36, 'txid-x');
        putVector(f, table + 4, 48, 'errors');
        f[table + 12] = MESSAGE_TYPE_STREAM;
      });
      const envelope = readEnvelope(frame);
      expect(text(envelope.txid)).to.equal('txid-x');
      expect(text(envelope.topic)).to.equal('errors');
      expect(envelope.messageType).to.equal(MESSAGE_TYPE_STREAM);
      expect(envelope.stream, 'type 4 without a union value').to.equal(null);
    });

    it('leaves the stream out for types other than 4', () => {
      const copy = writeStreamEnvelope({ txid: 't', topic: 'V', payload: bytes('p') }).slice();
      const position = findTypeByte(copy);
      expect(copy[position]).to.equal(MESSAGE_TYPE_STREAM);
      copy[position] = 3;
      const envelope = readEnvelope(copy);
      expect(envelope.messageType).to.equal(3);
      expect(envelope.stream).to.equal(null);
    });
  });

  describe('hostile input', () => {
    it('rejects frames too short to hold an envelope', () => {
      expectEnvelopeError(new Uint8Array(0), 'too_short');
      expectEnvelopeError(new Uint8Array([1, 2, 3]), 'too_short');
      expectEnvelopeError(new Uint8Array(7), 'too_short');
    });

    it('rejects a root offset past the end', () => {
      const frame = writeAck(bytes('t'), bytes('V'));
      new DataView(frame.buffer).setUint32(0, frame.length, true);
      expectEnvelopeError(frame, 'out_of_bounds');
      new DataView(frame.buffer).setUint32(0, 0xffffffff, true);
      expectEnvelopeError(frame, 'out_of_bounds');
    });

    it('rejects a vector length of 0xFFFFFFFF without allocating it', () => {
      const frame = writeAck(bytes('txid-1'), bytes('V'));
      const ack = readEnvelope(frame);
      const view = new DataView(frame.buffer);
      const topicLengthAt = ack.topic.byteOffset - 4;
      view.setUint32(topicLengthAt, 0xffffffff, true);
      const error = expectEnvelopeError(frame, 'out_of_bounds');
      expect(text(error.txid!), 'the txid read before the damage is kept for the error reply').to.equal('txid-1');

      const frame2 = writeAck(bytes('txid-2'), bytes('V'));
      new DataView(frame2.buffer).setUint32(readEnvelope(frame2).txid.byteOffset - 4, 0xffffffff, true);
      expect(expectEnvelopeError(frame2, 'out_of_bounds').txid).to.equal(null);
    });

    it('rejects a vtable outside the frame or of impossible size', () => {
      const frame = writeAck(bytes('t'), bytes('V'));
      const view = new DataView(frame.buffer);
      const table = view.getUint32(0, true);
      const soffset = view.getInt32(table, true);
      view.setInt32(table, table + 1000, true);
      expectEnvelopeError(frame, 'bad_vtable');
      view.setInt32(table, -1000, true);
      expectEnvelopeError(frame, 'bad_vtable');
      view.setInt32(table, soffset, true);
      const vtable = table - soffset;
      view.setUint16(vtable, 13, true); // odd
      expectEnvelopeError(frame, 'bad_vtable');
      view.setUint16(vtable, 2, true); // cannot hold its own header
      expectEnvelopeError(frame, 'bad_vtable');
      view.setUint16(vtable, 0xfffe, true); // past the end
      expectEnvelopeError(frame, 'bad_vtable');
    });

    it('requires the type-4 union value to be a table inside the frame, keeping the txid', () => {
      // the reference's ack points its union at a byte vector; as a stream that is no table
      const asStream = GOLDEN_ACK.slice();
      expect(asStream[GOLDEN_TYPE_AT]).to.equal(MESSAGE_TYPE_STREAM_ACK);
      asStream[GOLDEN_TYPE_AT] = MESSAGE_TYPE_STREAM;
      const error = expectEnvelopeError(asStream, 'bad_vtable');
      expect(text(error.txid!)).to.equal(GOLDEN_TXID);

      const outside = GOLDEN_ACK.slice();
      outside[GOLDEN_TYPE_AT] = MESSAGE_TYPE_STREAM;
      const unionAt = 20 + 8; // table + vtable entry for message
      new DataView(outside.buffer).setUint32(unionAt, 0x7fffffff, true);
      expectEnvelopeError(outside, 'out_of_bounds');
    });

    it('rejects a field that runs past the end of the frame', () => {
      const frame = handMadeEnvelope([4], () => {}, 24);
      const view = new DataView(frame.buffer);
      view.setUint16(8, 10, true); // txid uoffset at table 12 + 10 = 22: its 4 bytes straddle the end
      view.setUint16(6, 4, true); // keep the object size inside the frame
      expectEnvelopeError(frame, 'out_of_bounds');
    });

    it('rejects a scalar field that lies past the end of the frame', () => {
      // message_type only: vtable at 4 (size 10), table at 16, frame of 24 bytes
      const frame = handMadeEnvelope([0, 0, 0], () => {}, 24);
      const view = new DataView(frame.buffer);
      view.setUint16(6, 4, true); // object size inside the frame
      expect(readEnvelope(frame).messageType).to.equal(0);
      view.setUint16(12, 8, true); // message_type at 16 + 8 = 24: the first byte past the end
      expectEnvelopeError(frame, 'out_of_bounds');
    });

    it('rejects a stream whose payload vector reaches past the frame', () => {
      const frame = writeStreamEnvelope({ txid: 't-9', topic: 'V', payload: bytes('abcdef') });
      const payloadAt = readEnvelope(frame).stream!.payload.byteOffset - frame.byteOffset;
      new DataView(frame.buffer, frame.byteOffset).setUint32(payloadAt - 4, frame.length, true);
      const error = expectEnvelopeError(frame, 'out_of_bounds');
      expect(text(error.txid!)).to.equal('t-9');
    });

    it('survives every truncation of a valid frame, and never reads different data', () => {
      const frames = [
        writeStreamEnvelope({
          txid: 'de9a74cb3a9245f4bf5502-000000001',
          topic: 'V',
          payload: bytes('0123456789'),
          messageId: 'm',
          createdAt: 1_700_000_000,
          senderId: 's',
          deviceType: 'vehicle_device',
          deviceId: '5YJ3E1EA9PF000001',
          deliveredAtEpochMs: 1_700_000_000_123n,
        }),
        GOLDEN_ACK,
        writeErrorReply(bytes('x-1')),
      ];
      for (const full of frames) {
        const whole = readEnvelope(full);
        let rejected = 0;
        for (let n = 0; n < full.length; n++) {
          const envelope = readOrReject(full.slice(0, n));
          if (envelope === null) {
            rejected++;
            continue;
          }
          // only trailing NULs and padding may go missing without changing what is read
          expect(text(envelope.txid)).to.equal(text(whole.txid));
          expect(text(envelope.topic)).to.equal(text(whole.topic));
          expect(envelope.messageType).to.equal(whole.messageType);
          expect(text(envelope.stream?.payload ?? new Uint8Array(0))).to.equal(text(whole.stream?.payload ?? new Uint8Array(0)));
        }
        // what follows the last field read (the golden ack's unread union vector) may be cut freely
        expect(rejected).to.be.greaterThan(full.length / 2);
      }
    });

    it('reads spans inside a larger buffer with the same verdicts and bytes as readEnvelope, over 10,000 mutations', () => {
      const random = mulberry32(7);
      const seeds = [
        writeStreamEnvelope({
          txid: 'abc-000000001', topic: 'V', payload: bytes('hello world'), messageId: 'm', createdAt: 4_000_000_000,
          senderId: 's', deviceType: 'vehicle_device', deviceId: 'd', deliveredAtEpochMs: 1_700_000_000_123n,
        }),
        writeAck(bytes('abc-000000001'), bytes('V')),
        GOLDEN_ACK,
      ];
      const spans = new Int32Array(ENVELOPE_SPAN_COUNT);
      const span = (buffer: Uint8Array, at: number): string => text(buffer.subarray(spans[at], spans[at + 1]));
      let rejected = 0;
      for (let i = 0; i < 10_000; i++) {
        const frame = seeds[i % seeds.length]!.slice(0, i % 7 === 0 ? Math.floor(random() * 80) : undefined);
        for (let k = i % 5; k > 0; k--) frame[Math.floor(random() * frame.length)] = Math.floor(random() * 256);
        // Garbage on both sides: nothing outside the frame may be read.
        const buffer = new Uint8Array(frame.length + 64).fill(0xff);
        buffer.set(frame, 32);
        let expected: Envelope | EnvelopeError;
        try {
          expected = readEnvelope(frame);
        } catch (error) {
          expected = error as EnvelopeError;
        }
        try {
          readEnvelopeSpans(buffer, 32, 32 + frame.length, spans);
        } catch (error) {
          rejected++;
          expect(error, `frame ${i}`).to.be.instanceOf(EnvelopeError);
          expect(expected).to.be.instanceOf(EnvelopeError);
          const actual = error as EnvelopeError;
          const wanted = expected as EnvelopeError;
          expect([actual.kind, actual.message]).to.deep.equal([wanted.kind, wanted.message]);
          expect(actual.txid === null ? null : text(actual.txid)).to.equal(wanted.txid === null ? null : text(wanted.txid));
          continue;
        }
        expect(expected, `frame ${i}`).not.to.be.instanceOf(EnvelopeError);
        const envelope = expected as Envelope;
        expect(span(buffer, ENVELOPE_SPAN.TXID)).to.equal(text(envelope.txid));
        expect(span(buffer, ENVELOPE_SPAN.TOPIC)).to.equal(text(envelope.topic));
        expect(span(buffer, ENVELOPE_SPAN.MESSAGE_ID)).to.equal(text(envelope.messageId));
        expect(spans[ENVELOPE_SPAN.MESSAGE_TYPE]).to.equal(envelope.messageType);
        expect(spans[ENVELOPE_SPAN.STREAM]).to.equal(envelope.stream === null ? 0 : 1);
        if (envelope.stream !== null) {
          expect(span(buffer, ENVELOPE_SPAN.PAYLOAD)).to.equal(text(envelope.stream.payload));
          expect(span(buffer, ENVELOPE_SPAN.DEVICE_ID)).to.equal(text(envelope.stream.deviceId));
          expect(spans[ENVELOPE_SPAN.CREATED_AT]! >>> 0).to.equal(envelope.stream.createdAt);
        }
        const ack = new Uint8Array(256).fill(0xee);
        const end = writeAckFromSpans(ack, 8, buffer, spans[ENVELOPE_SPAN.TXID]!, spans[ENVELOPE_SPAN.TXID + 1]!, spans[ENVELOPE_SPAN.TOPIC]!, spans[ENVELOPE_SPAN.TOPIC + 1]!);
        expect(ack.slice(8, end)).to.deep.equal(writeAck(envelope.txid, envelope.topic));
      }
      expect(rejected).to.be.within(100, 9_900);
    });

    it('the direct span reader gives the table readers\' spans for every frame they accept and turns down every one they throw on (20,000 mutations)', () => {
      const random = mulberry32(0xd1ec7);
      const stream = (deviceType: string, deliveredAtEpochMs: bigint): Uint8Array =>
        writeStreamEnvelope({ txid: 'abc-000000001', topic: 'V', payload: bytes('hello world'), messageId: 'm', createdAt: 4_000_000_000, senderId: 's', deviceType, deviceId: 'd', deliveredAtEpochMs });
      const seeds = [stream('vehicle_device', 1_700_000_000_123n), stream('', 0n), writeAck(bytes('abc-000000001'), bytes('V')), GOLDEN_ACK];
      const direct = new Int32Array(ENVELOPE_SPAN_COUNT);
      const checked = new Int32Array(ENVELOPE_SPAN_COUNT);
      let accepted = 0;
      for (let i = 0; i < 20_000; i++) {
        const seed = seeds[i % seeds.length]!;
        const frame = seed.slice(0, i % 7 === 0 ? Math.floor(random() * (seed.length + 1)) : undefined);
        // Mostly the tables' bytes (offsets, vtables), where one byte changes what is read.
        for (let k = i % 4; k > 0; k--) frame[Math.floor(random() * Math.min(frame.length, k === 1 ? frame.length : 72))] = random() < 0.5 ? Math.floor(random() * 256) : Math.floor(random() * 16);
        const buffer = new Uint8Array(frame.length + 64).fill(0xff);
        buffer.set(frame, 32);
        // Both start from the same garbage: a slot one of them leaves unwritten shows.
        direct.fill(-7);
        checked.fill(-7);
        let verdict: EnvelopeError | null = null;
        try {
          readEnvelopeSpansChecked(buffer, 32, 32 + frame.length, checked);
        } catch (error) {
          verdict = error as EnvelopeError;
        }
        const ok = readSpansDirect(buffer, 32, 32 + frame.length, direct);
        expect(ok, `frame ${i}: ${verdict?.message ?? 'accepted'}`).to.equal(verdict === null);
        if (!ok) continue;
        accepted++;
        expect(Array.from(direct), `frame ${i}`).to.deep.equal(Array.from(checked));
        // And through the reader every caller uses.
        direct.fill(-7);
        readEnvelopeSpans(buffer, 32, 32 + frame.length, direct);
        expect(Array.from(direct), `frame ${i}`).to.deep.equal(Array.from(checked));
      }
      expect(accepted).to.be.within(2_000, 18_000);
      // Every 16-bit word of a stream envelope and of an ack set to every value up to past the frame's
      // end: each vtable entry, size and offset lands on each width check's edge.
      for (const seed of [seeds[0]!, seeds[2]!]) {
        for (let at = 0; at + 2 <= seed.length; at += 2) {
          for (let to = 0; to <= seed.length + 8; to++) {
            const frame = seed.slice();
            frame[at] = to & 0xff;
            frame[at + 1] = to >> 8;
            let good = true;
            try {
              readEnvelopeSpansChecked(frame, 0, frame.length, checked);
            } catch {
              good = false;
            }
            expect(readSpansDirect(frame, 0, frame.length, direct), `word at ${at} set to ${to}`).to.equal(good);
            if (good) expect(Array.from(direct), `word at ${at} set to ${to}`).to.deep.equal(Array.from(checked));
          }
        }
      }
    });

    it('throws only EnvelopeError on 10,000 random frames', () => {
      const random = mulberry32(0x5eed);
      let accepted = 0;
      for (let i = 0; i < 10_000; i++) {
        const frame = new Uint8Array(Math.floor(random() * 160));
        for (let j = 0; j < frame.length; j++) frame[j] = Math.floor(random() * 256);
        // small root offsets, so some random frames get past the first check
        if (frame.length >= 4 && i % 2 === 0) frame[1] = frame[2] = frame[3] = 0;
        if (readOrReject(frame) !== null) accepted++;
      }
      expect(accepted).to.be.lessThan(10_000);
    });

    it('throws only EnvelopeError on 10,000 mutations of valid frames', () => {
      const random = mulberry32(42);
      const seeds = [
        writeStreamEnvelope({ txid: 'abc-000000001', topic: 'V', payload: bytes('hello world'), messageId: 'm', createdAt: 5, deviceId: 'd' }),
        writeAck(bytes('abc-000000001'), bytes('V')),
        writeErrorReply(bytes('abc-000000001')),
        GOLDEN_ACK,
      ];
      let rejected = 0;
      for (let i = 0; i < 10_000; i++) {
        const frame = seeds[i % seeds.length]!.slice();
        const flips = 1 + Math.floor(random() * 4);
        for (let k = 0; k < flips; k++) {
          const at = Math.floor(random() * frame.length);
          frame[at] = random() < 0.3 ? 0xff : Math.floor(random() * 256);
        }
        if (readOrReject(frame) === null) rejected++;
      }
      expect(rejected, 'some mutations must hit structure').to.be.greaterThan(100);
    });
  });
});

/** The message_type byte of a frame written by writeStreamEnvelope, located through its vtable. */
function findTypeByte(frame: Uint8Array): number {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const table = view.getUint32(0, true);
  const vtable = table - view.getInt32(table, true);
  return table + view.getUint16(vtable + 8, true);
}
