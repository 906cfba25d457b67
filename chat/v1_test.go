package chat

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/peerscope/peerscope/identity"
	"github.com/peerscope/peerscope/internal/pbwire"
)

// Chat 1.0.0 read and wrote its messages with a hand-written protowire
// codec. The generated code replaced it on the same topic, so old and new
// peers must judge every message alike (see checkWire): this file keeps
// 1.0.0's decoders and encoders, frozen, as the oracle the generated code is
// held to, byte for byte on what the encoders write and verdict for verdict
// (and value for value) on whatever the decoders are given. Run the
// differential fuzzers with, e.g.,
//
//	go test -run XXX -fuzz FuzzDecoderMatchesV1 -fuzztime 5m ./chat
//
// The two known differences are in TestDecoderMatchesV1.

// TestDecoderMatchesV1 plays the crafted messages where the generated
// decoder is more lenient than 1.0.0's, and which checkWire must make it
// refuse (or accept) alike.
func TestDecoderMatchesV1(t *testing.T) {
	head := pbwire.AppendVarint(pbwire.AppendString(nil, 1, testBroadcast), 2, uint64(t0.UnixNano()))
	body := func(num protowire.Number, fields ...[]byte) []byte {
		return appendMessage(bytes.Clone(head), num, bytes.Join(fields, nil))
	}
	id := pbwire.AppendVarint(nil, 1, 1)
	text := func(s string) []byte { return pbwire.AppendString(nil, 2, s) }
	jury := func(extra []byte) []byte {
		a := (&action{Broadcast: testBroadcast, Seq: 5, Op: OpJury, Target: CommentID{bob.id, 7}.String(),
			Call: &wireCall{Author: bob.id, Comment: 7, Jurors: []peer.ID{alice.id}}}).mustEncode()
		return body(6, pbwire.AppendBytes(nil, 1, append(a, extra...)), pbwire.AppendBytes(nil, 2, []byte{1}))
	}
	secondCall := appendMessage(nil, 8, bytes.Join([][]byte{pbwire.AppendBytes(nil, 1, []byte(bob.id)),
		pbwire.AppendVarint(nil, 2, 7), pbwire.AppendBytes(nil, 5, []byte(carol.id))}, nil))
	far := append(protowire.AppendTag(nil, 1<<30, protowire.Fixed32Type), 1, 2, 3, 4)
	for _, c := range []struct {
		name string
		data []byte
		// differs: the one way the generated code differs from 1.0.0.
		differs string
	}{
		{name: "text twice, the first bad", data: body(3, id, text("a\x07"), text("ok"))},
		{name: "text twice, both good", data: body(3, id, text("one"), text("two"))},
		{name: "heart count past 32 bits", data: body(4, pbwire.AppendVarint(nil, 1, 1<<32+5))},
		{name: "presence state past 32 bits", data: body(5, pbwire.AppendVarint(nil, 1, 1<<32+1))},
		{name: "request op past 32 bits", data: body(10, pbwire.AppendBytes(nil, 1, pbwire.AppendVarint(nil, 3, 1<<32+1)))},
		{name: "request twice, the first bad", data: body(10, pbwire.AppendBytes(nil, 1, pbwire.AppendVarint(nil, 3, 99)),
			pbwire.AppendBytes(nil, 1, pbwire.AppendVarint(nil, 3, uint64(OpCommentsOff))))},
		{name: "known field, wrong wire type", data: body(3, id, text("x"), pbwire.AppendVarint(nil, 4, 1))},
		{name: "known body, wrong wire type", data: append(body(3, id, text("x")), pbwire.AppendVarint(nil, 9, 1)...)},
		{name: "two bodies", data: append(body(3, id, text("x")), appendMessage(nil, 4, pbwire.AppendVarint(nil, 1, 1))...)},
		{name: "the same body twice", data: append(body(3, id, text("x")), appendMessage(nil, 3, nil)...)},
		{name: "unknown fixed32", data: append(body(3, id, text("x")), far[len(far)-5:]...)},
		{name: "unknown group", data: append(body(3, id, text("x")), protowire.AppendTag(protowire.AppendTag(nil, 40, protowire.StartGroupType), 40, protowire.EndGroupType)...)},
		{name: "field number past 2^29", data: append(body(3, id, text("x")), far...)},
		{name: "field number past 2^29, nested", data: body(3, id, text("x"), far)},
		{name: "beat audience past 32 bits", data: body(9, pbwire.AppendVarint(nil, 1, 1<<32+5)),
			differs: "read modulo 2^32, where 1.0.0 read 2^32-1; only the broadcaster's beats carry it, and its own encoder never writes one"},
		{name: "a jury call twice", data: jury(secondCall),
			differs: "refused, where 1.0.0 took the second; only an action under the broadcaster's signature can be one, and no encoder writes it"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var o v1envelope
			var n envelope
			errO, errN := o.unmarshal(c.data), n.unmarshal(c.data)
			same := (errO == nil) == (errN == nil)
			if same && errO == nil {
				nb, err := n.encode()
				same = err == nil && bytes.Equal(o.marshal(nil), nb)
			}
			if same == (c.differs != "") {
				t.Fatalf("v1: %v; generated: %v; want them to differ: %v", errO, errN, c.differs != "")
			}
		})
	}
}

// TestLimiterMatchesV1 plays random traffic at each protocol rate into
// 1.0.0's token buckets (GCRA, frozen below) and into the limiter on
// golang.org/x/time/rate: they must allow the same messages, peeks and
// takes alike. Times are on a microsecond grid: within a nanosecond or so
// of a boundary the float64 tokens of x/time/rate may round the other way
// (limiter's comment).
func TestLimiterMatchesV1(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	d := DefaultLimits()
	rates := []Rate{d.Comment, d.Heart, d.Presence, d.Report, d.Vote, d.Beat, d.Request,
		{Every: d.Comment.Every, Burst: 2*d.Comment.Burst + 10}, {Every: 3 * time.Millisecond, Burst: 7}}
	key := limitKey{bob.id, kindComment}
	for round := range 2000 {
		r := rates[round%len(rates)]
		var old v1limiter
		var l limiter
		now := t0
		steps := []time.Duration{0, time.Microsecond, (r.Every / 3).Truncate(time.Microsecond), r.Every / 2,
			r.Every - time.Microsecond, r.Every, r.Every + time.Microsecond, 2 * r.Every, r.Every * time.Duration(r.Burst)}
		for i := range 400 {
			if rng.IntN(3) > 0 {
				now = now.Add(steps[rng.IntN(len(steps))])
			} else {
				now = now.Add(time.Duration(rng.Int64N(int64(3*r.Every/time.Microsecond))) * time.Microsecond)
			}
			take := rng.IntN(4) > 0
			if a, b := old.allow(now, key, r, take), l.allow(now, key.p, key.k, r, take); a != b {
				t.Fatalf("round %d step %d, rate %+v, take %v, at t0+%v: 1.0.0 says %v, x/time/rate %v", round, i, r, take, now.Sub(t0), a, b)
			}
		}
	}
}

func sameErr(t *testing.T, what string, data []byte, errO, errN error) bool {
	t.Helper()
	if (errO == nil) != (errN == nil) {
		t.Fatalf("%s %x: v1 says %v, the generated code says %v", what, data, errO, errN)
	}
	if errors.Is(errO, ErrTooLarge) != errors.Is(errN, ErrTooLarge) || errors.Is(errO, ErrMalformed) != errors.Is(errN, ErrMalformed) {
		t.Fatalf("%s %x: v1 says %v, the generated code says %v", what, data, errO, errN)
	}
	return errO == nil
}

func FuzzDecoderMatchesV1(f *testing.F) {
	for _, b := range envelopeSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var o v1envelope
		var n envelope
		if !sameErr(t, "envelope", data, o.unmarshal(data), n.unmarshal(data)) {
			return
		}
		// Fields added since 1.0.0, which it skips: compare without them.
		clearLateFields(&n)
		nb, err := n.encode()
		if err != nil {
			t.Fatal(err)
		}
		if ob := o.marshal(nil); !bytes.Equal(ob, nb) {
			t.Fatalf("%x decodes to different envelopes:\nv1  %x\nnew %x", data, ob, nb)
		}
	})
}

func FuzzSignedMatchesV1(f *testing.F) {
	for _, b := range stateSeeds() {
		f.Add(b)
	}
	for _, tc := range codecCases() {
		if tc.env.Action != nil {
			f.Add(tc.env.Action.encode())
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		o, errO := v1decodeSigned(data)
		n, errN := decodeSigned(data)
		if !sameErr(t, "signed", data, errO, errN) {
			return
		}
		if !reflect.DeepEqual(o.toNew(), n) {
			t.Fatalf("%x: v1 %+v, new %+v", data, o.toNew(), n)
		}
	})
}

func FuzzLogMatchesV1(f *testing.F) {
	for _, b := range logSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		o, errO := v1ParseLog(data)
		n, errN := ParseLog(data)
		if !sameErr(t, "log", data, errO, errN) {
			return
		}
		if !reflect.DeepEqual(o, n) {
			t.Fatalf("%x: v1 %+v, new %+v", data, o, n)
		}
		if !bytes.Equal(v1MarshalLog(o), MarshalLog(n)) {
			t.Fatal("the encoders differ")
		}
	})
}

func TestEncodersMatchV1(t *testing.T) {
	for name, b := range envelopeSeeds() {
		var o v1envelope
		if o.unmarshal(b) != nil {
			continue
		}
		// 1.0.0 drops the fields added since (a heart's moment, a beat's
		// edge), and what the new code writes once they are cleared must
		// be its.
		var n envelope
		if n.unmarshal(b) == nil && (clearLateFields(&n) || strings.HasPrefix(name, "late/")) {
			b = n.mustEncode()
		}
		if !bytes.Equal(o.marshal(nil), b) {
			t.Errorf("%s: v1 writes %x, the generated code %x", name, o.marshal(nil), b)
		}
	}
}

// clearLateFields clears the fields added since 1.0.0 (lateFields) and
// reports whether any was set.
func clearLateFields(e *envelope) bool {
	set := false
	if e.Heart != nil {
		set = set || e.Heart.At != 0
		e.Heart.At = 0
	}
	if e.Beat != nil {
		set = set || e.Beat.Edge != 0
		e.Beat.Edge = 0
	}
	return set
}

type v1envelope struct {
	Broadcast string
	Sent      int64
	Comment   *wireComment
	Heart     *wireHeart
	Presence  *wirePresence
	Action    *v1signed
	Report    *wireReport
	Vote      *wireVote
	Beat      *wireBeat
	Request   *v1action
}

type v1action struct{ action }

type v1signed struct {
	v1action
	body []byte
	sig  []byte
}

func (s *v1signed) toNew() *signedAction {
	return &signedAction{action: s.action, body: s.body, sig: s.sig}
}

// --- 1.0.0's codec, frozen (its types renamed v1…) ---

// marshal appends the envelope's encoding to b.
func (e v1envelope) marshal(b []byte) []byte {
	b = pbwire.AppendString(b, 1, e.Broadcast)
	b = pbwire.AppendVarint(b, 2, uint64(e.Sent))
	switch {
	case e.Comment != nil:
		c := e.Comment
		var s []byte
		s = pbwire.AppendVarint(s, 1, c.ID)
		s = pbwire.AppendString(s, 2, c.Text)
		s = pbwire.AppendVarint(s, 3, uint64(c.At))
		s = pbwire.AppendBytes(s, 4, c.Attestation)
		b = v1appendMessage(b, 3, s)
	case e.Heart != nil:
		b = v1appendMessage(b, 4, pbwire.AppendVarint(nil, 1, uint64(e.Heart.Count)))
	case e.Presence != nil:
		p := e.Presence
		var s []byte
		s = pbwire.AppendVarint(s, 1, uint64(p.State))
		s = pbwire.AppendBytes(s, 2, p.Attestation)
		b = v1appendMessage(b, 5, s)
	case e.Action != nil:
		b = v1appendMessage(b, 6, e.Action.marshal(nil))
	case e.Report != nil:
		var s []byte
		s = pbwire.AppendBytes(s, 1, []byte(e.Report.Author))
		s = pbwire.AppendVarint(s, 2, e.Report.Comment)
		b = v1appendMessage(b, 7, s)
	case e.Vote != nil:
		var s []byte
		s = pbwire.AppendVarint(s, 1, e.Vote.Call)
		s = pbwire.AppendBool(s, 2, e.Vote.Guilty)
		b = v1appendMessage(b, 8, s)
	case e.Beat != nil:
		t := e.Beat
		var s []byte
		s = pbwire.AppendVarint(s, 1, uint64(t.Audience))
		s = pbwire.AppendVarint(s, 2, t.Hearts)
		s = pbwire.AppendVarint(s, 3, uint64(t.PresenceMS))
		s = pbwire.AppendVarint(s, 4, uint64(t.HeartMS))
		s = pbwire.AppendVarint(s, 5, t.ModSeq)
		s = pbwire.AppendBytes(s, 6, t.Digest)
		b = v1appendMessage(b, 9, s)
	case e.Request != nil:
		b = v1appendMessage(b, 10, pbwire.AppendBytes(nil, 1, e.Request.marshal(nil)))
	}
	return b
}

// unmarshal decodes an envelope. It checks every size and field but no
// signature and no state: that is the validator's work. Slices alias b.
func (e *v1envelope) unmarshal(b []byte) error {
	*e = v1envelope{}
	if len(b) > MaxMessageSize {
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, len(b))
	}
	bodies := 0
	err := pbwire.EachField(b, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
		if err := pbwire.CheckWireType(num, typ, 10, 1, 3, 4, 5, 6, 7, 8, 9, 10); err != nil {
			return err
		}
		if num >= 3 && num <= 10 {
			bodies++
			if bodies > 1 {
				return fmt.Errorf("more than one body")
			}
		}
		var err error
		switch num {
		case 1:
			if len(raw) == 0 || len(raw) > maxStringLen || !validText(raw, false) {
				return fmt.Errorf("bad broadcast ID")
			}
			e.Broadcast = string(raw)
		case 2:
			e.Sent = int64(v)
		case 3:
			e.Comment = new(wireComment)
			err = e.Comment.v1unmarshal(raw)
		case 4:
			e.Heart = new(wireHeart)
			err = e.Heart.v1unmarshal(raw)
		case 5:
			e.Presence = new(wirePresence)
			err = e.Presence.v1unmarshal(raw)
		case 6:
			e.Action = new(v1signed)
			err = e.Action.unmarshal(raw)
		case 7:
			e.Report = new(wireReport)
			err = e.Report.v1unmarshal(raw)
		case 8:
			e.Vote = new(wireVote)
			err = e.Vote.v1unmarshal(raw)
		case 9:
			e.Beat = new(wireBeat)
			err = e.Beat.v1unmarshal(raw)
		case 10:
			e.Request = new(v1action)
			err = pbwire.EachField(raw, func(num protowire.Number, typ protowire.Type, _ uint64, raw []byte) error {
				if err := pbwire.CheckWireType(num, typ, 1, 1); err != nil {
					return err
				}
				if num == 1 {
					return e.Request.unmarshal(raw)
				}
				return nil
			})
			if err == nil && e.Request.Op == 0 {
				err = fmt.Errorf("request without an action")
			}
		}
		if err != nil {
			return fmt.Errorf("field %d: %w", num, err)
		}
		return nil
	})
	if err == nil {
		switch {
		case e.Broadcast == "":
			err = fmt.Errorf("no broadcast ID")
		case e.Sent <= 0:
			err = fmt.Errorf("no send time")
		case bodies == 0:
			err = fmt.Errorf("no body")
		}
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return nil
}

func (c *wireComment) v1unmarshal(b []byte) error {
	err := pbwire.EachField(b, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
		if err := pbwire.CheckWireType(num, typ, 4, 2, 4); err != nil {
			return err
		}
		switch num {
		case 1:
			c.ID = v
		case 2:
			if len(raw) > MaxCommentBytes || !validText(raw, true) {
				return fmt.Errorf("bad comment text")
			}
			c.Text = string(raw)
		case 3:
			c.At = int64(v)
		case 4:
			if len(raw) > maxAttestationSize {
				return fmt.Errorf("attestation of %d bytes", len(raw))
			}
			if len(raw) > 0 {
				c.Attestation = raw
			}
		}
		return nil
	})
	switch {
	case err != nil:
		return err
	case c.ID == 0:
		return fmt.Errorf("comment without an ID")
	case len(bytes.TrimSpace([]byte(c.Text))) == 0:
		return fmt.Errorf("empty comment")
	case c.At < 0:
		return fmt.Errorf("negative stream time")
	}
	return nil
}

func (h *wireHeart) v1unmarshal(b []byte) error {
	err := pbwire.EachField(b, func(num protowire.Number, typ protowire.Type, v uint64, _ []byte) error {
		if err := pbwire.CheckWireType(num, typ, 1); err != nil {
			return err
		}
		if num == 1 {
			if v == 0 || v > MaxHearts {
				return fmt.Errorf("heart count %d", v)
			}
			h.Count = uint32(v)
		}
		return nil
	})
	if err == nil && h.Count == 0 {
		err = fmt.Errorf("no hearts")
	}
	return err
}

func (p *wirePresence) v1unmarshal(b []byte) error {
	err := pbwire.EachField(b, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
		if err := pbwire.CheckWireType(num, typ, 2, 2); err != nil {
			return err
		}
		switch num {
		case 1:
			if v == 0 || v > maxPresence {
				return fmt.Errorf("presence state %d", v)
			}
			p.State = uint32(v)
		case 2:
			if len(raw) > maxAttestationSize {
				return fmt.Errorf("attestation of %d bytes", len(raw))
			}
			if len(raw) > 0 {
				p.Attestation = raw
			}
		}
		return nil
	})
	if err == nil && p.State == 0 {
		err = fmt.Errorf("no presence state")
	}
	return err
}

func (r *wireReport) v1unmarshal(b []byte) error {
	err := pbwire.EachField(b, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
		if err := pbwire.CheckWireType(num, typ, 2, 1); err != nil {
			return err
		}
		switch num {
		case 1:
			id, err := identity.DecodePeer(raw)
			if err != nil {
				return err
			}
			r.Author = id
		case 2:
			r.Comment = v
		}
		return nil
	})
	if err == nil && (r.Author == "" || r.Comment == 0) {
		err = fmt.Errorf("report without a comment")
	}
	return err
}

func (v *wireVote) v1unmarshal(b []byte) error {
	err := pbwire.EachField(b, func(num protowire.Number, typ protowire.Type, x uint64, _ []byte) error {
		if err := pbwire.CheckWireType(num, typ, 2); err != nil {
			return err
		}
		switch num {
		case 1:
			v.Call = x
		case 2:
			v.Guilty = x != 0
		}
		return nil
	})
	if err == nil && v.Call == 0 {
		err = fmt.Errorf("vote without a call")
	}
	return err
}

func (t *wireBeat) v1unmarshal(b []byte) error {
	return pbwire.EachField(b, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
		if err := pbwire.CheckWireType(num, typ, 6, 6); err != nil {
			return err
		}
		switch num {
		case 1:
			t.Audience = uint32(min(v, 1<<32-1))
		case 2:
			t.Hearts = v
		case 3:
			t.PresenceMS = uint32(min(v, 1<<32-1))
		case 4:
			t.HeartMS = uint32(min(v, 1<<32-1))
		case 5:
			t.ModSeq = v
		case 6:
			if len(raw) > maxDigestLen {
				return fmt.Errorf("digest of %d bytes", len(raw))
			}
			if len(raw) > 0 {
				t.Digest = raw
			}
		}
		return nil
	})
}

func (a *v1action) marshal(b []byte) []byte {
	b = pbwire.AppendString(b, 1, a.Broadcast)
	b = pbwire.AppendVarint(b, 2, a.Seq)
	b = pbwire.AppendVarint(b, 3, uint64(a.Op))
	b = pbwire.AppendString(b, 4, a.Target)
	b = pbwire.AppendBool(b, 5, a.On)
	b = pbwire.AppendVarint(b, 6, uint64(a.Until))
	for _, s := range a.List {
		b = protowire.AppendTag(b, 7, protowire.BytesType)
		b = protowire.AppendString(b, s)
	}
	if c := a.Call; c != nil {
		var s []byte
		s = pbwire.AppendBytes(s, 1, []byte(c.Author))
		s = pbwire.AppendVarint(s, 2, c.Comment)
		s = pbwire.AppendString(s, 3, c.Text)
		s = pbwire.AppendVarint(s, 4, uint64(c.Deadline))
		for _, j := range c.Jurors {
			s = protowire.AppendTag(s, 5, protowire.BytesType)
			s = protowire.AppendBytes(s, []byte(j))
		}
		b = v1appendMessage(b, 8, s)
	}
	return b
}

// unmarshal decodes an action and checks that its fields fit its Op. It
// does not require Broadcast and Seq (a moderator's request has neither).
func (a *v1action) unmarshal(b []byte) error {
	*a = v1action{}
	if len(b) > maxActionSize {
		return fmt.Errorf("%w: action of %d bytes", ErrTooLarge, len(b))
	}
	err := pbwire.EachField(b, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
		if err := pbwire.CheckWireType(num, typ, 8, 1, 4, 7, 8); err != nil {
			return err
		}
		switch num {
		case 1:
			if len(raw) > maxStringLen || !validText(raw, false) {
				return fmt.Errorf("bad broadcast ID")
			}
			a.Broadcast = string(raw)
		case 2:
			a.Seq = v
		case 3:
			if v == 0 || v >= uint64(maxOp) {
				return fmt.Errorf("unknown op %d", v)
			}
			a.Op = Op(v)
		case 4:
			if len(raw) > maxStringLen || !validText(raw, false) {
				return fmt.Errorf("bad target")
			}
			a.Target = string(raw)
		case 5:
			a.On = v != 0
		case 6:
			if int64(v) < 0 {
				return fmt.Errorf("negative time")
			}
			a.Until = int64(v)
		case 7:
			if len(a.List) >= MaxFollows {
				return fmt.Errorf("list longer than %d", MaxFollows)
			}
			if len(raw) == 0 || len(raw) > maxAccountKeyLen || !validText(raw, false) {
				return fmt.Errorf("bad list entry")
			}
			a.List = append(a.List, string(raw))
		case 8:
			a.Call = new(wireCall)
			return a.Call.v1unmarshal(raw)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return a.check()
}

func (c *wireCall) v1unmarshal(b []byte) error {
	err := pbwire.EachField(b, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
		if err := pbwire.CheckWireType(num, typ, 5, 1, 3, 5); err != nil {
			return err
		}
		switch num {
		case 1:
			id, err := identity.DecodePeer(raw)
			if err != nil {
				return err
			}
			c.Author = id
		case 2:
			c.Comment = v
		case 3:
			if len(raw) > MaxCommentBytes || !validText(raw, true) {
				return fmt.Errorf("bad call text")
			}
			c.Text = string(raw)
		case 4:
			if int64(v) < 0 {
				return fmt.Errorf("negative deadline")
			}
			c.Deadline = int64(v)
		case 5:
			if len(c.Jurors) >= MaxJury {
				return fmt.Errorf("more than %d jurors", MaxJury)
			}
			id, err := identity.DecodePeer(raw)
			if err != nil {
				return err
			}
			c.Jurors = append(c.Jurors, id)
		}
		return nil
	})
	if err == nil && len(c.Jurors) == 0 {
		err = fmt.Errorf("a jury of nobody")
	}
	return err
}

func (s *v1signed) marshal(b []byte) []byte {
	b = pbwire.AppendBytes(b, 1, s.body)
	return pbwire.AppendBytes(b, 2, s.sig)
}

func (s *v1signed) unmarshal(b []byte) error {
	*s = v1signed{}
	if len(b) > maxActionSize+256 {
		return fmt.Errorf("%w: signed action of %d bytes", ErrTooLarge, len(b))
	}
	err := pbwire.EachField(b, func(num protowire.Number, typ protowire.Type, _ uint64, raw []byte) error {
		if err := pbwire.CheckWireType(num, typ, 2, 1, 2); err != nil {
			return err
		}
		switch num {
		case 1:
			s.body = raw
		case 2:
			if len(raw) > 256 {
				return fmt.Errorf("signature of %d bytes", len(raw))
			}
			s.sig = raw
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(s.sig) == 0 {
		return fmt.Errorf("unsigned action")
	}
	if err := s.v1action.unmarshal(s.body); err != nil {
		return err
	}
	if s.Broadcast == "" || s.Seq == 0 {
		return fmt.Errorf("action without broadcast or sequence number")
	}
	return nil
}

// decodeSigned decodes one signed action (a sync frame, or the body of an
// envelope), wrapping errors in ErrMalformed.
func v1decodeSigned(b []byte) (*v1signed, error) {
	s := new(v1signed)
	if err := s.unmarshal(b); err != nil {
		return nil, fmt.Errorf("%w: action: %w", ErrMalformed, err)
	}
	return s, nil
}

// MarshalLog encodes a log for the replay manifest.
func v1MarshalLog(log []Comment) []byte {
	var b []byte
	for i := range log {
		b = v1appendMessage(b, 1, v1marshalEntry(&log[i]))
	}
	return b
}

func v1marshalEntry(c *Comment) []byte {
	var b []byte
	b = pbwire.AppendBytes(b, 1, []byte(c.ID.Author))
	b = pbwire.AppendVarint(b, 2, c.ID.Seq)
	b = pbwire.AppendVarint(b, 3, uint64(pbwire.UnixNano(c.At)))
	b = pbwire.AppendVarint(b, 4, uint64(pbwire.UnixNano(c.Received)))
	b = pbwire.AppendString(b, 5, c.Text)
	if id := c.Author.Identity; id != nil {
		b = pbwire.AppendString(b, 6, id.Provider)
		b = pbwire.AppendString(b, 7, id.Account)
		b = pbwire.AppendString(b, 8, id.Handle)
		b = pbwire.AppendString(b, 9, id.Name)
		b = pbwire.AppendString(b, 10, id.Avatar)
	}
	b = pbwire.AppendBool(b, 11, c.Author.Broadcaster)
	b = pbwire.AppendBool(b, 12, c.Author.Moderator)
	b = pbwire.AppendBool(b, 13, c.Deleted)
	return b
}

// ParseLog decodes a log made by MarshalLog.
func v1ParseLog(b []byte) ([]Comment, error) {
	if len(b) > MaxLogSize {
		return nil, fmt.Errorf("%w: log of %d bytes", ErrTooLarge, len(b))
	}
	var log []Comment
	err := pbwire.EachField(b, func(num protowire.Number, typ protowire.Type, _ uint64, raw []byte) error {
		if err := pbwire.CheckWireType(num, typ, 1, 1); err != nil {
			return err
		}
		if num != 1 {
			return nil
		}
		var c Comment
		if err := v1unmarshalEntry(&c, raw); err != nil {
			return fmt.Errorf("entry %d: %w", len(log), err)
		}
		log = append(log, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: log: %w", ErrMalformed, err)
	}
	return log, nil
}

func v1unmarshalEntry(c *Comment, b []byte) error {
	var id Identity
	err := pbwire.EachField(b, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
		if err := pbwire.CheckWireType(num, typ, 13, 1, 5, 6, 7, 8, 9, 10); err != nil {
			return err
		}
		switch num {
		case 1:
			p, err := identity.DecodePeer(raw)
			if err != nil {
				return err
			}
			c.ID.Author = p
			c.Author.Peer = p
		case 2:
			c.ID.Seq = v
		case 3:
			c.At = pbwire.FromUnixNano(int64(v))
		case 4:
			c.Received = pbwire.FromUnixNano(int64(v))
		case 5:
			if len(raw) > MaxCommentBytes || !validText(raw, true) {
				return fmt.Errorf("bad text")
			}
			c.Text = string(raw)
		case 6, 7, 8, 9, 10:
			if len(raw) > maxAvatarLen || !validText(raw, false) {
				return fmt.Errorf("field %d: bad identity", num)
			}
			*[]*string{&id.Provider, &id.Account, &id.Handle, &id.Name, &id.Avatar}[num-6] = string(raw)
		case 11:
			c.Author.Broadcaster = v != 0
		case 12:
			c.Author.Moderator = v != 0
		case 13:
			c.Deleted = v != 0
		}
		return nil
	})
	if err != nil {
		return err
	}
	if c.ID.Author == "" || c.ID.Seq == 0 || c.Text == "" || c.At.IsZero() {
		return fmt.Errorf("entry without author, seq, text or time")
	}
	if id != (Identity{}) {
		if id.Provider == "" || id.Account == "" {
			return fmt.Errorf("identity without provider or account")
		}
		c.Author.Identity = &id
	}
	return nil
}

func v1appendMessage(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// v1limiter is 1.0.0's token bucket per (sender, kind), kept as GCRA: one
// time per bucket, the "theoretical arrival time" when it would be full.
type v1limiter struct{ tat map[limitKey]time.Time }

func (l *v1limiter) allow(now time.Time, key limitKey, r Rate, take bool) bool {
	if l.tat == nil {
		l.tat = make(map[limitKey]time.Time)
	}
	tat, ok := l.tat[key]
	if !ok || tat.Before(now) {
		tat = now
	}
	if tat.Sub(now) > time.Duration(r.Burst-1)*r.Every {
		return false
	}
	if take {
		l.tat[key] = tat.Add(r.Every)
	}
	return true
}
