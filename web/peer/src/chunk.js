// Chunks: what the broadcaster signed, and checking it in the browser
// before anything plays (package chunk's SigningBytes and Verify).
//
// The broadcaster's key is the ed25519 key its peer ID inlines, and a
// broadcast ID is <broadcaster's peer ID>.<nonce>: the link is all a
// viewer needs to verify. The signature is over
//
//   "peerscope/chunk/v1\0" ‖ u32be len(broadcast) ‖ broadcast ‖ u64be seq ‖
//   u64be wallclock ‖ u64be duration ‖ u32be flags ‖ sha256(payload)
//
// for a public chunk (epoch 0), and the same under "peerscope/chunk/v2\0"
// with u32be epoch before the hash otherwise (proto/chunk.proto).
import { peerIdFromString } from '@libp2p/peer-id';

export const FLAG_KEYFRAME = 1;
export const FLAG_INIT = 2;
export const FLAG_END = 4;

const utf8 = new TextEncoder();
const DOMAIN_V1 = utf8.encode('peerscope/chunk/v1\0');
const DOMAIN_V2 = utf8.encode('peerscope/chunk/v2\0');

// broadcasterOf returns the peer ID that a broadcast ID names.
export function broadcasterOf(broadcast) {
  const dot = broadcast.lastIndexOf('.');
  if (dot <= 0) throw new Error(`not a broadcast ID: ${broadcast}`);
  return broadcast.slice(0, dot);
}

// keyOf returns the raw ed25519 public key a peer ID inlines.
export function keyOf(peerID) {
  const id = peerIdFromString(peerID);
  if (id.type !== 'Ed25519' || !id.publicKey) throw new Error(`peer ID ${peerID} does not inline an ed25519 key`);
  return id.publicKey.raw;
}

// signingBytes returns what the broadcaster signed, given the payload's
// SHA-256.
export function signingBytes(c, payloadHash) {
  const id = utf8.encode(c.broadcast);
  const domain = c.epoch === 0 ? DOMAIN_V1 : DOMAIN_V2;
  const n = domain.length + 4 + id.length + 8 * 3 + 4 + (c.epoch === 0 ? 0 : 4) + payloadHash.length;
  const b = new Uint8Array(n);
  const dv = new DataView(b.buffer);
  let o = 0;
  b.set(domain, o); o += domain.length;
  dv.setUint32(o, id.length); o += 4;
  b.set(id, o); o += id.length;
  dv.setBigUint64(o, BigInt.asUintN(64, c.seq)); o += 8;
  dv.setBigUint64(o, BigInt.asUintN(64, c.wallclock)); o += 8;
  dv.setBigUint64(o, BigInt.asUintN(64, c.duration)); o += 8;
  dv.setUint32(o, c.flags >>> 0); o += 4;
  if (c.epoch !== 0) { dv.setUint32(o, c.epoch >>> 0); o += 4; }
  b.set(payloadHash, o);
  return b;
}

// Verifier checks chunks of one broadcast with WebCrypto's Ed25519 (in
// Chromium, Firefox and Safari), or libp2p's own ed25519 code where
// WebCrypto lacks it.
export class Verifier {
  constructor(broadcast, subtle = globalThis.crypto.subtle) {
    this.broadcast = broadcast;
    this.raw = keyOf(broadcasterOf(broadcast));
    this.subtle = subtle;
    this.key = null; // a CryptoKey, once imported; false: no WebCrypto Ed25519
    this.impl = ''; // which code verified: 'webcrypto' or 'libp2p'
  }

  async cryptoKey() {
    if (this.key === null) {
      try {
        this.key = await this.subtle.importKey('raw', this.raw, { name: 'Ed25519' }, false, ['verify']);
      } catch {
        this.key = false;
      }
    }
    return this.key;
  }

  // verify resolves to null for a chunk the broadcaster signed for this
  // broadcast, and to the reason otherwise.
  async verify(c) {
    if (c.broadcast !== this.broadcast) return 'wrong broadcast';
    if (c.signature.length !== 64) return 'no signature';
    const hash = new Uint8Array(await this.subtle.digest('SHA-256', c.payload));
    const msg = signingBytes(c, hash);
    const key = await this.cryptoKey();
    this.impl = key ? 'webcrypto' : 'libp2p';
    let ok;
    if (key) {
      ok = await this.subtle.verify({ name: 'Ed25519' }, key, c.signature, msg);
    } else {
      ok = await peerIdFromString(broadcasterOf(this.broadcast)).publicKey.verify(msg, c.signature);
    }
    return ok ? null : 'bad signature';
  }
}
