// Verification: the chunks the broadcaster signed pass, with the signing
// bytes the Go code signs; every altered or forged one is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Frames, decode } from '../src/wire.js';
import { Verifier, signingBytes, broadcasterOf, keyOf } from '../src/chunk.js';
import { vectors, hex, toHex } from './vectors.js';

const skip = vectors ? false : 'run by go test ./web/peer (TestJS)';
const chunkOf = (v) => decode(new Frames().push(hex(v.frame))[0]).chunk;

test('the broadcaster signed these, and they pass', { skip }, async () => {
  const ver = new Verifier(vectors.broadcast);
  for (const v of vectors.good) {
    const c = chunkOf(v);
    const sum = new Uint8Array(await crypto.subtle.digest('SHA-256', c.payload));
    assert.equal(toHex(signingBytes(c, sum)), v.signing, v.name);
    assert.equal(await ver.verify(c), null, v.name);
  }
  assert.equal(ver.impl, 'webcrypto');
});

test('altered and forged chunks are refused', { skip }, async () => {
  const ver = new Verifier(vectors.broadcast);
  for (const v of vectors.bad) {
    assert.notEqual(await ver.verify(chunkOf(v)), null, v.name);
  }
});

test('without WebCrypto Ed25519, libp2p\'s own code decides the same', { skip }, async () => {
  const subtle = {
    digest: (...a) => crypto.subtle.digest(...a),
    importKey: async () => { throw new Error('Ed25519 not supported'); },
  };
  const ver = new Verifier(vectors.broadcast, subtle);
  for (const v of vectors.good) assert.equal(await ver.verify(chunkOf(v)), null, v.name);
  for (const v of vectors.bad) assert.notEqual(await ver.verify(chunkOf(v)), null, v.name);
  assert.equal(ver.impl, 'libp2p');
});

test('the key comes from the broadcast ID', { skip }, () => {
  assert.equal(keyOf(broadcasterOf(vectors.broadcast)).length, 32);
  assert.throws(() => broadcasterOf('nodot'));
  assert.throws(() => keyOf('QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N')); // an RSA-era ID
});
