// Package pbwire holds the pieces Peerscope's protobuf codecs share: for the
// hand-written ones left on hot paths (mesh's frames, the chunk), a walk over
// a message's fields, appenders that leave proto3 defaults out, and the check
// that a known field came with its schema's wire type; for those on the
// generated code (proto/*pb), CheckKnownFields, the same check after
// proto.Unmarshal (Unmarshal does both). For all: frames on a stream (a
// varint length, then the bytes) and times as Unix nanoseconds. The schemas
// are proto/*.proto.
//
// How data flows through it:
//
//	hand codecs (chunk, mesh, replay's index records):
//	    encode: Append* ─► bytes          decode: bytes ─► EachField ─► CheckWireType, field by field
//	generated code (announce, identity, replay's manifest, replay/swarm):
//	    bytes ─► Unmarshal (proto.Unmarshal, then CheckKnownFields) ─► the proto/*pb message
//	chat (wirecheck.go): EachField over the envelope first, as chat 1.0.0 judged it
//	streams (announce, replay/swarm): WriteFrame(varint length ‖ bytes) ─► ReadFrame(max)
//	times (announce, chat's log, identity, replay's manifest): time.Time ─► UnixNano ─► FromUnixNano
package pbwire
