// The tree's wire format as the browser speaks it: proto/mesh.proto's
// Message, through the code protoc-gen-es generates from it (src/gen, made
// by scripts/bundle.sh), one Message per frame — its length as an unsigned
// varint, then its bytes — as mesh/p2p reads and writes them.
//
// What the Go decoder (mesh/codec.go) refuses, this refuses too where it
// can tell: a frame over MAX_FRAME, lists of more than 64 entries, strings
// over 512 bytes. Message types it does not know it leaves to the caller,
// which ignores them (a newer parent may say more than this peer knows).
import { create, fromBinary, toBinary, ScalarType } from '@bufbuild/protobuf';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { MessageSchema, Type, Reason } from './gen/mesh_pb.js';
import { ChunkSchema } from './gen/chunk_pb.js';

export { Type, Reason, MessageSchema, ChunkSchema };

// MAX_FRAME is mesh.MaxFrameSize: the chunk's 4 MiB payload plus 64 KiB.
export const MAX_FRAME = (4 << 20) + (64 << 10);
const MAX_LIST = 64;
const MAX_STRING = 512;

export class WireError extends Error {}

const utf8 = new TextEncoder();
const tooLong = (s) => s.length > MAX_STRING || (s.length * 3 > MAX_STRING && utf8.encode(s).length > MAX_STRING);

// check refuses a decoded message that breaks the schema's limits.
function check(m) {
  for (const list of [m.path, m.candidates, m.addrs, m.counters, m.vouches]) {
    if (list.length > MAX_LIST) throw new WireError(`a list of ${list.length} entries`);
  }
  const peers = [...m.path, ...[...m.candidates, ...m.vouches].map((c) => c.peer).filter(Boolean)];
  for (const p of peers) {
    if (p.addrs.length > MAX_LIST) throw new WireError(`a peer with ${p.addrs.length} addresses`);
    if (tooLong(p.id) || p.addrs.some(tooLong)) throw new WireError('a string over 512 bytes');
  }
  if (m.addrs.some(tooLong) || tooLong(m.lost) || tooLong(m.parent) || m.counters.some((c) => tooLong(c.name))) {
    throw new WireError('a string over 512 bytes');
  }
  if (m.chunk && tooLong(m.chunk.broadcast)) throw new WireError('a broadcast ID over 512 bytes');
}

// wireOf is the wire type a field of the schema is sent with.
function wireOf(f) {
  const kind = f.fieldKind === 'list' ? f.listKind : f.fieldKind;
  if (kind === 'message') return WireType.LengthDelimited;
  if (kind === 'enum') return WireType.Varint;
  switch (f.scalar) {
    case ScalarType.STRING: case ScalarType.BYTES: return WireType.LengthDelimited;
    case ScalarType.DOUBLE: case ScalarType.FIXED64: case ScalarType.SFIXED64: return WireType.Bit64;
    case ScalarType.FLOAT: case ScalarType.FIXED32: case ScalarType.SFIXED32: return WireType.Bit32;
    default: return WireType.Varint;
  }
}

// walk checks what the generated decoder lets pass and the Go decoders
// refuse (internal/pbwire.CheckWireType, chunk.Decode): a known field with
// another wire type, a message field given twice (protobuf would merge
// them), any field of a chunk given twice. It follows the generated
// descriptors, so it knows whatever fields the schema has.
function walk(desc, b, depth = 0) {
  if (depth > 4) throw new WireError('nested too deep');
  const r = new BinaryReader(b);
  const seen = new Set();
  while (r.pos < r.len) {
    const [no, wt] = r.tag();
    const f = desc.fields.find((x) => x.number === no);
    if (!f) { r.skip(wt, no); continue; }
    const want = wireOf(f);
    const packed = f.fieldKind === 'list' && want === WireType.Varint && wt === WireType.LengthDelimited;
    if (wt !== want && !packed) throw new WireError(`field ${no} of ${desc.name} sent as wire type ${wt}`);
    if (f.fieldKind !== 'list') {
      if (seen.has(no) && (f.fieldKind === 'message' || desc.typeName === ChunkSchema.typeName)) {
        throw new WireError(`field ${no} of ${desc.name} given twice`);
      }
      seen.add(no);
    }
    const sub = f.fieldKind === 'message' || (f.fieldKind === 'list' && f.listKind === 'message') ? f.message : null;
    if (sub) walk(sub, r.bytes(), depth + 1); else r.skip(wt, no);
  }
}

// decode reads one message (a frame's bytes). A chunk's payload aliases b.
export function decode(b) {
  let m;
  try {
    walk(MessageSchema, b);
    m = fromBinary(MessageSchema, b, { readUnknownFields: false });
  } catch (e) {
    if (e instanceof WireError) throw e;
    throw new WireError(`malformed: ${e.message}`);
  }
  check(m);
  return m;
}

// message makes a Message of a type with the fields given.
export function message(type, fields = {}) {
  return create(MessageSchema, { type, ...fields });
}

function varint(n) {
  const out = [];
  while (n >= 0x80) { out.push((n & 0x7f) | 0x80); n = Math.floor(n / 128); }
  out.push(n);
  return out;
}

// frame encodes m as one frame: varint length, then the message.
export function frame(m) {
  const body = toBinary(MessageSchema, m);
  const head = varint(body.length);
  const out = new Uint8Array(head.length + body.length);
  out.set(head, 0);
  out.set(body, head.length);
  return out;
}

// Frames cuts a byte stream into frames: push what arrives, take whole
// frames as they complete. A frame over MAX_FRAME is refused as soon as its
// length is read, before its bytes are kept.
export class Frames {
  constructor(max = MAX_FRAME) {
    this.max = max;
    this.parts = [];
    this.size = 0;
  }

  // push adds bytes and returns the frames they complete (their bodies).
  push(bytes) {
    if (bytes.length) { this.parts.push(bytes); this.size += bytes.length; }
    const out = [];
    for (;;) {
      const head = this.peekLength();
      if (head === null) break;
      const [len, n] = head;
      if (len > this.max) throw new WireError(`a frame of ${len} bytes, over ${this.max}`);
      if (this.size < n + len) break;
      const all = this.take(n + len);
      out.push(all.subarray(n));
    }
    return out;
  }

  // peekLength reads the varint at the front: [length, its size] or null.
  peekLength() {
    let len = 0; let mul = 1; let i = 0;
    for (const p of this.parts) {
      for (let j = 0; j < p.length; j++, i++) {
        const b = p[j];
        if (i >= 5) throw new WireError('a frame length over 5 bytes');
        len += (b & 0x7f) * mul;
        mul *= 128;
        if (b < 0x80) return [len, i + 1];
      }
    }
    return null;
  }

  // take removes and returns the first n bytes.
  take(n) {
    let out;
    if (this.parts[0].length >= n) {
      out = this.parts[0].subarray(0, n);
    } else {
      out = new Uint8Array(n);
      let o = 0;
      for (const p of this.parts) {
        const k = Math.min(p.length, n - o);
        out.set(p.subarray(0, k), o);
        o += k;
        if (o === n) break;
      }
    }
    let left = n;
    while (left > 0) {
      const p = this.parts[0];
      if (p.length <= left) { this.parts.shift(); left -= p.length; } else { this.parts[0] = p.subarray(left); left = 0; }
    }
    this.size -= n;
    return out;
  }
}
