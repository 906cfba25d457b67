package chat

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/identity"
)

// step is one message from a sender, checked and (if accepted) delivered.
type step struct {
	from peer.ID
	e    envelope
	at   time.Time // default t0
}

// machineCase is one case of the validators' table: a viewer's machine,
// synced with the broadcaster unless unsynced, given setup, then checking
// msg from from at at. The table's messages also seed FuzzEnvelope and
// FuzzCheck.
type machineCase struct {
	name     string
	self     testPeer // default viewerPeer
	unsynced bool
	setup    []step
	from     peer.ID
	via      peer.ID // the relay that hands it over; default from itself
	msg      envelope
	at       time.Time // default t0
	want     result
	err      error // errors.Is, when set
}

func (tc *machineCase) src() peer.ID {
	if tc.via != "" {
		return tc.via
	}
	return tc.from
}

func act(seq uint64, a action) step {
	a.Seq = seq
	return step{from: broadcasterPeer.id, e: actionEnv(t0, signed(broadcasterPeer, a))}
}

func machineCases() []machineCase {
	aliceAtt := attestation(alice.id, "alice", bootKey)
	bobAtt := attestation(bob.id, "bob", bootKey)
	rogueAtt := attestation(bob.id, "bob", rogueKey)
	aliceAsBob := attestation(alice.id, "alice", bootKey) // presented by bob
	expired := func() []byte {
		a := &Attestation{Provider: "twitter", Account: "id-bob", Handle: "@bob", Peer: bob.id,
			Issued: t0.Add(-48 * time.Hour), Expires: t0.Add(-time.Hour)}
		if err := a.Sign(bootKey); err != nil {
			panic(err)
		}
		return a.Marshal()
	}()
	badSig := func() []byte {
		a, _ := ParseAttestation(attestation(bob.id, "bob", bootKey))
		a.Signature = bytes.Clone(a.Signature)
		a.Signature[0] ^= 1
		return a.Marshal()
	}()
	rogueBadSig := func() []byte {
		a, _ := ParseAttestation(rogueAtt)
		a.Signature = bytes.Clone(a.Signature)
		a.Signature[0] ^= 1
		return a.Marshal()
	}()
	blockBob := act(10, action{Op: OpBlock, Target: userOfPeer(bob.id), On: true})
	off := act(11, action{Op: OpCommentsOff, On: true})
	carolMod := act(12, action{Op: OpModerator, Target: userOfPeer(carol.id), On: true})
	followers := act(13, action{Op: OpFollowersOnly, On: true, List: []string{"twitter:id-alice"}})
	jury := act(20, action{Op: OpJury, Target: CommentID{mallory.id, 1}.String(), Call: &wireCall{
		Author: mallory.id, Comment: 1, Text: "spam", Deadline: t0.Add(time.Minute).UnixNano(), Jurors: []peer.ID{alice.id, bob.id}}})
	hello := commentEnv(t0, 1, "hello", nil)
	burst := func(from peer.ID, n int) []step {
		var s []step
		for i := range n {
			s = append(s, step{from: from, e: commentEnv(t0, uint64(100+i), "again", nil)})
		}
		return s
	}
	return []machineCase{
		{name: "comment/anonymous", from: bob.id, msg: hello, want: accept},
		{name: "comment/identified", from: alice.id, msg: commentEnv(t0, 1, "hi", aliceAtt), want: accept},
		{name: "comment/not-synced", unsynced: true, from: bob.id, msg: hello, want: ignore, err: ErrNotReady},
		{name: "comment/wrong-broadcast", from: bob.id, msg: envelope{Broadcast: "other", Sent: t0.UnixNano(),
			Comment: &wireComment{ID: 1, Text: "x"}}, want: reject, err: ErrForged},
		{name: "comment/stale", from: bob.id, msg: commentEnv(t0.Add(-3*time.Minute), 1, "old", nil), want: ignore, err: ErrStale},
		{name: "comment/future", from: bob.id, msg: commentEnv(t0.Add(3*time.Minute), 1, "soon", nil), want: ignore, err: ErrStale},
		{name: "comment/duplicate", setup: []step{{from: bob.id, e: hello}}, from: bob.id, msg: hello, want: ignore, err: ErrDuplicate},
		{name: "comment/same-id-other-author", setup: []step{{from: bob.id, e: hello}}, from: alice.id, msg: hello, want: accept},

		{name: "block/peer", setup: []step{blockBob}, from: bob.id, msg: hello, want: ignore, err: ErrBlocked},
		{name: "block/others-unaffected", setup: []step{blockBob}, from: alice.id, msg: hello, want: accept},
		{name: "block/hearts-too", setup: []step{blockBob}, from: bob.id,
			msg: env(t0, envelope{Heart: &wireHeart{Count: 3}}), want: ignore, err: ErrBlocked},
		{name: "block/account-on-any-peer", setup: []step{act(10, action{Op: OpBlock, Target: userOfAccount("twitter:id-bob"), On: true})},
			from: bob.id, msg: commentEnv(t0, 1, "new key, same account", bobAtt), want: ignore, err: ErrBlocked},
		{name: "block/unblocked", setup: []step{blockBob, act(14, action{Op: OpBlock, Target: userOfPeer(bob.id)})},
			from: bob.id, msg: hello, want: accept},
		{name: "block/replayed-old-unblock", setup: []step{act(9, action{Op: OpBlock, Target: userOfPeer(bob.id)}), blockBob,
			act(9, action{Op: OpBlock, Target: userOfPeer(bob.id)})}, from: bob.id, msg: hello, want: ignore, err: ErrBlocked},

		{name: "off/viewer", setup: []step{off}, from: bob.id, msg: hello, want: ignore, err: ErrCommentsOff},
		{name: "off/broadcaster", setup: []step{off}, from: broadcasterPeer.id, msg: hello, want: accept},
		{name: "off/moderator", setup: []step{carolMod, off}, from: carol.id, msg: hello, want: accept},
		{name: "off/back-on", setup: []step{off, act(15, action{Op: OpCommentsOff})}, from: bob.id, msg: hello, want: accept},
		{name: "off/replayed-old-on", setup: []step{act(5, action{Op: OpCommentsOff}), off, act(5, action{Op: OpCommentsOff})},
			from: bob.id, msg: hello, want: ignore, err: ErrCommentsOff},
		{name: "off/hearts-still-fine", setup: []step{off}, from: bob.id, msg: env(t0, envelope{Heart: &wireHeart{Count: 3}}), want: accept},

		{name: "followers/follower", setup: []step{followers}, from: alice.id, msg: commentEnv(t0, 1, "hi", aliceAtt), want: accept},
		{name: "followers/anonymous", setup: []step{followers}, from: bob.id, msg: hello, want: ignore, err: ErrFollowersOnly},
		{name: "followers/not-followed", setup: []step{followers}, from: bob.id, msg: commentEnv(t0, 1, "hi", bobAtt), want: ignore, err: ErrFollowersOnly},

		{name: "mute/muted", setup: []step{act(16, action{Op: OpMute, Target: userOfPeer(bob.id), Until: t0.Add(time.Minute).UnixNano()})},
			from: bob.id, msg: hello, want: ignore, err: ErrMuted},
		{name: "mute/over", setup: []step{act(16, action{Op: OpMute, Target: userOfPeer(bob.id), Until: t0.Add(time.Minute).UnixNano()})},
			from: bob.id, msg: commentEnv(t0.Add(61*time.Second), 1, "back", nil), at: t0.Add(61 * time.Second), want: accept},
		{name: "mute/forever", setup: []step{act(16, action{Op: OpMute, Target: userOfPeer(bob.id), Until: MuteForever})},
			from: bob.id, msg: commentEnv(t0.Add(time.Hour), 1, "still?", nil), at: t0.Add(time.Hour), want: ignore, err: ErrMuted},
		{name: "mute/no-reports", setup: []step{act(16, action{Op: OpMute, Target: userOfPeer(bob.id), Until: MuteForever})},
			from: bob.id, msg: env(t0, envelope{Report: &wireReport{Author: alice.id, Comment: 1}}), want: ignore, err: ErrMuted},

		{name: "delete/deleted-id", setup: []step{act(17, action{Op: OpDelete, Target: CommentID{bob.id, 1}.String()})},
			from: bob.id, msg: hello, want: ignore, err: ErrDeleted},

		{name: "identity/untrusted-is-anonymous", from: bob.id, msg: commentEnv(t0, 1, "hi", rogueAtt), want: accept},
		{name: "identity/expired-is-anonymous", from: bob.id, msg: commentEnv(t0, 1, "hi", expired), want: accept},
		{name: "identity/bad-signature", from: bob.id, msg: commentEnv(t0, 1, "hi", badSig), want: reject, err: ErrBadSignature},
		{name: "identity/bad-signature-untrusted-issuer", from: bob.id, msg: commentEnv(t0, 1, "hi", rogueBadSig), want: reject, err: ErrBadSignature},
		{name: "identity/someone-elses", from: bob.id, msg: commentEnv(t0, 1, "I am alice", aliceAsBob), want: reject, err: ErrWrongPeer},
		{name: "identity/presence-someone-elses", from: bob.id,
			msg: env(t0, envelope{Presence: &wirePresence{State: presenceJoin, Attestation: aliceAsBob}}), want: reject, err: ErrWrongPeer},

		{name: "rate/burst", setup: burst(bob.id, 5), from: bob.id, msg: hello, want: ignore, err: ErrRateLimited},
		{name: "rate/refilled", setup: burst(bob.id, 5), from: bob.id, msg: commentEnv(t0.Add(time.Second), 1, "later", nil),
			at: t0.Add(time.Second), want: accept},
		{name: "rate/flood-from-the-flooder", setup: burst(bob.id, 25), from: bob.id, msg: hello, want: reject, err: ErrRateLimited},
		{name: "rate/flood-through-a-relay", setup: burst(bob.id, 25), from: bob.id, via: alice.id, msg: hello, want: ignore, err: ErrRateLimited},
		{name: "rate/per-sender", setup: burst(bob.id, 5), from: alice.id, msg: hello, want: accept},
		{name: "rate/per-kind", setup: burst(bob.id, 5), from: bob.id, msg: env(t0, envelope{Heart: &wireHeart{Count: 1}}), want: accept},

		{name: "beat/from-broadcaster", from: broadcasterPeer.id, msg: env(t0, envelope{Beat: &wireBeat{Audience: 3}}), want: accept},
		{name: "beat/forged", from: mallory.id, msg: env(t0, envelope{Beat: &wireBeat{Audience: 1 << 30}}), want: reject, err: ErrForged},

		{name: "action/signed-by-another", from: mallory.id,
			msg: actionEnv(t0, signed(mallory, action{Seq: 1 << 62, Op: OpCommentsOff, On: true})), want: reject, err: ErrBadSignature},
		{name: "action/other-broadcast", from: broadcasterPeer.id,
			msg: actionEnv(t0, signed(broadcasterPeer, action{Broadcast: "other", Seq: 1, Op: OpCommentsOff, On: true})), want: reject, err: ErrForged},
		{name: "action/relayed-by-anyone", from: mallory.id,
			msg: actionEnv(t0, signed(broadcasterPeer, action{Seq: 1, Op: OpCommentsOff, On: true})), want: accept},
		{name: "action/duplicate", setup: []step{off}, from: broadcasterPeer.id, msg: off.e, want: ignore, err: ErrDuplicate},
		{name: "action/old-send-time-fine", from: broadcasterPeer.id,
			msg: actionEnv(t0.Add(-time.Hour), signed(broadcasterPeer, action{Seq: 1, Op: OpCommentsOff, On: true})), want: accept},

		{name: "vote/juror", setup: []step{jury}, from: alice.id, msg: env(t0, envelope{Vote: &wireVote{Call: 20, Guilty: true}}), want: accept},
		{name: "vote/twice", setup: []step{jury, {from: alice.id, e: env(t0, envelope{Vote: &wireVote{Call: 20, Guilty: true}})}},
			from: alice.id, msg: env(t0, envelope{Vote: &wireVote{Call: 20}}), want: ignore, err: ErrDuplicate},
		{name: "vote/not-a-juror", setup: []step{jury}, from: carol.id, msg: env(t0, envelope{Vote: &wireVote{Call: 20, Guilty: true}}),
			want: ignore, err: ErrNotJuror},
		{name: "vote/unknown-call-relayed", from: alice.id, msg: env(t0, envelope{Vote: &wireVote{Call: 20, Guilty: true}}), want: accept},
		{name: "vote/unknown-call-at-broadcaster", self: broadcasterPeer, from: alice.id,
			msg: env(t0, envelope{Vote: &wireVote{Call: 20, Guilty: true}}), want: ignore, err: ErrNoCall},
		{name: "vote/after-deadline", setup: []step{jury}, from: alice.id, at: t0.Add(2 * time.Minute),
			msg: env(t0.Add(2*time.Minute), envelope{Vote: &wireVote{Call: 20, Guilty: true}}), want: ignore, err: ErrNoCall},

		{name: "request/moderator", setup: []step{carolMod}, from: carol.id,
			msg: env(t0, envelope{Request: &action{Op: OpBlock, Target: userOfPeer(bob.id), On: true}}), want: accept},
		{name: "request/not-moderator", from: mallory.id,
			msg: env(t0, envelope{Request: &action{Op: OpBlock, Target: userOfPeer(bob.id), On: true}}), want: ignore, err: ErrNotModerator},
		{name: "request/beyond-a-moderator", setup: []step{carolMod}, from: carol.id,
			msg: env(t0, envelope{Request: &action{Op: OpModerator, Target: userOfPeer(mallory.id), On: true}}), want: reject, err: ErrForged},

		{name: "presence/before-sync", unsynced: true, from: alice.id,
			msg: env(t0, envelope{Presence: &wirePresence{State: presenceJoin, Attestation: aliceAtt}}), want: accept},
		{name: "heart/before-sync", unsynced: true, from: bob.id, msg: env(t0, envelope{Heart: &wireHeart{Count: 1}}), want: ignore, err: ErrNotReady},
		{name: "presence/without-attestation", from: bob.id, msg: env(t0, envelope{Presence: &wirePresence{State: presenceBeat}}), want: accept},
		{name: "report/any-viewer", from: bob.id, msg: env(t0, envelope{Report: &wireReport{Author: alice.id, Comment: 1}}), want: accept},
	}
}

// syncMachine hands m the broadcaster's beat with m's own digest, as a
// broadcaster whose state m shares would send it.
func syncMachine(t testing.TB, m *machine, now time.Time) {
	t.Helper()
	b := env(now, envelope{Beat: &wireBeat{ModSeq: m.modSeq, Digest: m.stateDigest()}})
	e, res, err := m.check(now, broadcasterPeer.id, broadcasterPeer.id, b.mustEncode())
	if res != accept {
		t.Fatalf("beat refused: %v", err)
	}
	m.deliver(now, broadcasterPeer.id, broadcasterPeer.id, e)
	if !m.synced {
		t.Fatal("not synced after a matching beat")
	}
}

func runStep(t testing.TB, m *machine, s step) {
	t.Helper()
	at := s.at
	if at.IsZero() {
		at = t0
	}
	e, res, err := m.check(at, s.from, s.from, s.e.mustEncode())
	if res == accept {
		m.deliver(at, s.from, s.from, e)
	}
	_ = err
}

func TestValidators(t *testing.T) {
	for _, tc := range machineCases() {
		t.Run(tc.name, func(t *testing.T) {
			self := tc.self
			if self.id == "" {
				self = viewerPeer
			}
			m := newTestMachine(self, nil)
			if !tc.unsynced {
				syncMachine(t, m, t0)
			}
			for _, s := range tc.setup {
				runStep(t, m, s)
			}
			at := tc.at
			if at.IsZero() {
				at = t0
			}
			_, res, err := m.check(at, tc.from, tc.src(), mustMarshal(t, tc.msg))
			if res != tc.want {
				t.Fatalf("check = %v (%v), want %v", res, err, tc.want)
			}
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Fatalf("check error = %v, want %v", err, tc.err)
			}
		})
	}
}

// TestForgedModerationLeavesStateAlone: whatever an attacker sends, the
// moderation state changes only by the broadcaster's newer actions.
func TestForgedModerationLeavesStateAlone(t *testing.T) {
	m := newTestMachine(viewerPeer, nil)
	syncMachine(t, m, t0)
	runStep(t, m, act(100, action{Op: OpCommentsOff, On: true}))
	before := m.moderation(t0)
	digest := bytes.Clone(m.stateDigest())
	genuine := signed(broadcasterPeer, action{Seq: 200, Op: OpCommentsOff})
	tampered := *genuine
	tampered.body = bytes.Clone(genuine.body)
	tampered.body[len(tampered.body)-1] ^= 1 // On: false becomes …
	for _, s := range []*signedAction{
		signed(mallory, action{Seq: 1 << 62, Op: OpCommentsOff}),                               // signed by the attacker
		signed(broadcasterPeer, action{Seq: 50, Op: OpCommentsOff}),                            // an old "comments on"
		signed(broadcasterPeer, action{Broadcast: "other.b", Seq: 1 << 62, Op: OpCommentsOff}), // another broadcast's
		&tampered,
	} {
		_, res, _ := m.check(t0, mallory.id, mallory.id, actionEnv(t0, s).mustEncode())
		if res == accept {
			t.Fatalf("accepted forged or stale action %+v", s.action)
		}
	}
	if after := m.moderation(t0); !after.CommentsOff || after.Seq != before.Seq || !bytes.Equal(digest, m.stateDigest()) {
		t.Fatalf("state changed: %+v → %+v", before, after)
	}
}

// swarm is a set of machines that hear each other directly: what one
// publishes, every one (itself included, as pubsub does) checks and, if
// accepted, delivers. It plays the network for the machine's flows.
type swarm struct {
	t   *testing.T
	now time.Time
	ms  map[peer.ID]*machine
	evs map[peer.ID][]Event
	// treeHearts stands in for the mesh: the taps machines with a Tap
	// handed it, which the broadcaster reads as the tree's count, with
	// their moments (as TreeLink counts them).
	treeHearts HeartSums
}

func newSwarm(t *testing.T, peers map[testPeer][]byte) *swarm {
	s := &swarm{t: t, now: t0, ms: map[peer.ID]*machine{}, evs: map[peer.ID][]Event{}}
	for p, att := range peers {
		s.ms[p.id] = newTestMachine(p, att)
	}
	s.settle()
	return s
}

// settle ticks every machine and passes messages until none is left.
func (s *swarm) settle() {
	for _, m := range s.ms {
		s.tick(m)
	}
	for range 100 {
		moved := false
		for id, m := range s.ms {
			rd := m.takeReady()
			for _, tp := range rd.taps {
				s.treeHearts.Total += uint64(tp.N)
				if !tp.At.IsZero() {
					s.treeHearts.Moments[momentIndex(tp.At)] += uint64(tp.N)
				}
			}
			s.evs[id] = append(s.evs[id], rd.events...)
			for _, b := range rd.publish {
				moved = true
				s.broadcast(id, b)
			}
			if len(rd.fetch) > 0 {
				// Any peer may answer: the first other synced one does
				// (as the room asks); the broadcaster asks them all.
				var st [][]byte
				for pid, o := range s.ms {
					if pid != id && o.synced {
						st = append(st, o.state()...)
						if !m.isBroadcaster {
							break
						}
					}
				}
				var acts []*signedAction
				for _, a := range st {
					sa, err := decodeSigned(a)
					if err != nil {
						s.t.Fatal(err)
					}
					acts = append(acts, sa)
				}
				m.applyState(s.now, acts)
				moved = true
			}
		}
		if !moved {
			return
		}
	}
	s.t.Fatal("swarm did not settle")
}

func (s *swarm) broadcast(from peer.ID, b []byte) {
	for _, m := range s.ms {
		if e, res, _ := m.check(s.now, from, from, b); res == accept {
			m.deliver(s.now, from, from, e)
		}
	}
}

// publish hands the swarm a message that m's API produced.
func (s *swarm) publish(from peer.ID, b []byte, err error) {
	s.t.Helper()
	if err != nil {
		s.t.Fatal(err)
	}
	s.broadcast(from, b)
	s.settle()
}

func (s *swarm) advance(d time.Duration) {
	s.now = s.now.Add(d)
	s.settle()
}

func TestSwarmJoinSyncsState(t *testing.T) {
	s := newSwarm(t, map[testPeer][]byte{broadcasterPeer: nil, alice: nil})
	br := s.ms[broadcasterPeer.id]
	out, err := br.moderate(s.now, action{Op: OpCommentsOff, On: true})
	if err != nil {
		t.Fatal(err)
	}
	s.publish(broadcasterPeer.id, out[0], nil)
	// A late joiner learns the state through the beat's digest and a fetch.
	s.ms[bob.id] = newTestMachine(bob, nil)
	s.advance(3 * time.Second)
	if st := s.ms[bob.id].moderation(s.now); !st.Synced || !st.CommentsOff {
		t.Fatalf("late joiner's state = %+v", st)
	}
}

// TestSwarmBroadcasterRestart: a broadcaster whose node restarts gets its
// own actions back from the swarm, and a joiner still syncs.
func TestSwarmBroadcasterRestart(t *testing.T) {
	s := newSwarm(t, map[testPeer][]byte{broadcasterPeer: nil, alice: nil})
	out, err := s.ms[broadcasterPeer.id].moderate(s.now, action{Op: OpBlock, Target: userOfPeer(mallory.id), On: true})
	s.publish(broadcasterPeer.id, out[0], err)
	s.ms[broadcasterPeer.id] = newTestMachine(broadcasterPeer, nil) // restarted, empty
	s.ms[bob.id] = newTestMachine(bob, nil)
	for range 20 {
		s.advance(time.Second)
	}
	for id, m := range s.ms {
		if st := m.moderation(s.now); !st.Synced || len(st.Blocked) != 1 {
			t.Fatalf("%s after the restart: %+v", id, st)
		}
	}
}

func TestSwarmJury(t *testing.T) {
	peers := map[testPeer][]byte{broadcasterPeer: nil, mallory: nil, bob: nil}
	jurors := []testPeer{alice, carol, newTestPeer(7), newTestPeer(8), newTestPeer(9)}
	for _, j := range jurors {
		peers[j] = nil
	}
	s := newSwarm(t, peers)
	s.advance(2 * time.Second)
	for id, m := range s.ms {
		if !m.synced {
			t.Fatalf("%s not synced", id)
		}
		// Everyone is heard from, so everyone is in the jury pool.
		s.publish(id, mustMarshal(t, env(s.now, envelope{Heart: &wireHeart{Count: 1}})), nil)
	}
	offend := func() CommentID {
		id, b, err := s.ms[mallory.id].comment(s.now, "buy cheap followers", time.Time{})
		s.publish(mallory.id, b, err)
		b, err = s.ms[bob.id].reportComment(s.now, id)
		s.publish(bob.id, b, err)
		// The jurors vote guilty.
		var summoned int
		for _, j := range jurors {
			for _, e := range s.evs[j.id] {
				if sm, ok := e.(*Summons); ok && sm.Comment == id {
					summoned++
					b, err := s.ms[j.id].vote(s.now, sm.Call, true)
					s.publish(j.id, b, err)
				}
			}
		}
		if summoned != 5 {
			t.Fatalf("%d of the 5 viewers besides author and reporter were summoned", summoned)
		}
		return id
	}
	offend()
	var verdict *Verdict
	for _, e := range s.evs[broadcasterPeer.id] {
		if v, ok := e.(*Verdict); ok {
			verdict = v
		}
	}
	if verdict == nil || !verdict.Guilty || verdict.For != 3 || verdict.Until.IsZero() {
		t.Fatalf("verdict = %+v, want guilty by the first 3 votes, muted for a while", verdict)
	}
	for id, m := range s.ms {
		if _, _, err := m.mayCommentErr(s.now, mallory.id); !errors.Is(err, ErrMuted) {
			t.Fatalf("%s: mallory may comment after the verdict (%v)", id, err)
		}
	}
	// A minute later the mute is over...
	s.advance(61 * time.Second)
	if _, _, err := s.ms[bob.id].mayCommentErr(s.now, mallory.id); err != nil {
		t.Fatalf("mallory still refused after the mute: %v", err)
	}
	// ...and a second conviction is for the rest of the broadcast.
	for id := range s.evs {
		s.evs[id] = nil
	}
	offend()
	for _, e := range s.evs[broadcasterPeer.id] {
		if v, ok := e.(*Verdict); ok && (!v.Guilty || !v.Until.IsZero()) {
			t.Fatalf("second verdict = %+v, want guilty for the broadcast", v)
		}
	}
	s.advance(time.Hour)
	if _, _, err := s.ms[alice.id].mayCommentErr(s.now, mallory.id); !errors.Is(err, ErrMuted) {
		t.Fatalf("repeat offender not muted an hour later: %v", err)
	}
}

// mayCommentErr says whether m would accept a comment from p now.
func (m *machine) mayCommentErr(now time.Time, p peer.ID) (*envelope, result, error) {
	m.lim = limiter{} // the question is the state, not the rate
	return m.check(now, p, p, commentEnv(now, uint64(now.UnixNano()), "probe", nil).mustEncode())
}

// floated sums the hearts a node's Hearts events floated.
func (s *swarm) floated(id peer.ID) (events, hearts int) {
	for _, e := range s.evs[id] {
		if h, ok := e.(*Hearts); ok {
			events++
			hearts += h.Count
		}
	}
	return events, hearts
}

// Hearts go up the tree (a Tap) and come back down in the broadcaster's
// beats: no heart message on the topic, and every node floats the others'.
func TestSwarmHeartsGoUpTheTree(t *testing.T) {
	s := newSwarm(t, map[testPeer][]byte{broadcasterPeer: nil, alice: nil, bob: nil, carol: nil})
	for _, m := range s.ms {
		m.cfg.Tap = func(int, time.Time) {} // the swarm collects rd.taps
	}
	s.advance(2 * time.Second)
	for range 250 {
		s.ms[alice.id].heart(s.now, 1, time.Time{})
	}
	s.ms[carol.id].heart(s.now, 50, time.Time{})
	s.ms[broadcasterPeer.id].heart(s.now, 7, time.Time{})
	var heartMsgs uint64
	for _, m := range s.ms {
		heartMsgs += m.stats.Accepted["heart"]
	}
	if s.advance(2 * time.Second); heartMsgs != 0 || s.treeHearts.Total != 307 {
		t.Fatalf("%d heart messages on the topic, %d taps in the tree; want none and 307", heartMsgs, s.treeHearts.Total)
	}
	s.advance(2 * time.Second) // the next beat
	for _, c := range []struct {
		who  testPeer
		want int
	}{{bob, 307}, {alice, 57}, {carol, 257}, {broadcasterPeer, 300}} {
		if _, got := s.floated(c.who.id); got != c.want {
			t.Errorf("%s floated %d hearts, want %d (everyone's but its own)", c.who.id, got, c.want)
		}
		if v := s.ms[c.who.id].viewersNow(tickInput{hearts: s.treeHearts}); v.Hearts != 307 {
			t.Errorf("%s's total is %d, want 307", c.who.id, v.Hearts)
		}
	}
	// A joiner takes the total as it stands and floats only what comes next.
	s.ms[viewerPeer.id] = newTestMachine(viewerPeer, nil)
	s.advance(2 * time.Second)
	s.ms[bob.id].heart(s.now, 3, time.Time{})
	s.advance(2 * time.Second)
	s.advance(2 * time.Second)
	if _, got := s.floated(viewerPeer.id); got != 3 {
		t.Fatalf("the joiner floated %d hearts, want the 3 tapped after it joined", got)
	}
}

// A node outside a tree sends its taps over the topic, aggregated: one
// message for 250 taps, and the beat carries them to everyone.
func TestSwarmHeartsOverTheTopic(t *testing.T) {
	s := newSwarm(t, map[testPeer][]byte{broadcasterPeer: nil, alice: nil, bob: nil})
	s.advance(2 * time.Second)
	for range 250 {
		s.ms[alice.id].heart(s.now, 1, time.Time{})
	}
	s.advance(time.Second)
	if n := s.ms[bob.id].stats.Accepted["heart"]; n != 1 {
		t.Fatalf("bob took %d heart messages, want 1 carrying 250", n)
	}
	s.advance(2 * time.Second)
	if _, got := s.floated(bob.id); got != 250 {
		t.Fatalf("bob floated %d hearts, want 250", got)
	}
	if _, got := s.floated(alice.id); got != 0 {
		t.Fatalf("alice floated %d hearts of her own again", got)
	}
	if v := s.ms[bob.id].viewersNow(tickInput{}); v.Hearts != 250 {
		t.Fatalf("bob's heart total = %d, want 250 from the beat", v.Hearts)
	}
}

func TestSwarmViewers(t *testing.T) {
	s := newSwarm(t, map[testPeer][]byte{
		broadcasterPeer: nil,
		alice:           attestation(alice.id, "alice", bootKey),
		carol:           attestation(carol.id, "carol", bootKey),
		bob:             nil,
	})
	s.advance(2 * time.Second)
	s.advance(time.Second)
	br := s.ms[broadcasterPeer.id]
	v := br.viewersNow(tickInput{audience: 100})
	if v.Live != 100 || len(v.Identified) != 2 || v.Anonymous != 98 {
		t.Fatalf("viewers = %+v, want 100 live, alice and carol identified", v)
	}
	if v.Identified[0].Identity.Handle == "" {
		t.Fatalf("no handle: %+v", v.Identified[0])
	}
	// Carol leaves: she is gone at once. Alice goes silent: she is gone
	// after a few presence intervals.
	s.publish(carol.id, s.ms[carol.id].leave(s.now), nil)
	delete(s.ms, carol.id)
	if v := br.viewersNow(tickInput{audience: 99}); len(v.Identified) != 1 {
		t.Fatalf("after carol left: %+v", v.Identified)
	}
	delete(s.ms, alice.id)
	s.advance(presenceMisses*minPresence + 2*minPresence)
	if v := br.viewersNow(tickInput{audience: 98}); len(v.Identified) != 0 {
		t.Fatalf("silent alice still listed: %+v", v.Identified)
	}
}

func TestSwarmModeratorAndDelete(t *testing.T) {
	s := newSwarm(t, map[testPeer][]byte{broadcasterPeer: nil, carol: nil, bob: nil})
	s.advance(2 * time.Second)
	out, err := s.ms[broadcasterPeer.id].moderate(s.now, action{Op: OpModerator, Target: userOfPeer(carol.id), On: true})
	s.publish(broadcasterPeer.id, out[0], err)
	id, b, err := s.ms[bob.id].comment(s.now, "oops", time.Time{})
	s.publish(bob.id, b, err)
	// Carol, a moderator, deletes it through the broadcaster.
	out, err = s.ms[carol.id].moderate(s.now, action{Op: OpDelete, Target: id.String()})
	s.publish(carol.id, out[0], err)
	for pid, m := range s.ms {
		if c := m.logIndex[id]; c == nil || !c.Deleted {
			t.Fatalf("%s: comment not marked deleted: %+v", pid, c)
		}
	}
	// Bob, not a moderator, may not.
	if _, err := s.ms[bob.id].moderate(s.now, action{Op: OpCommentsOff, On: true}); !errors.Is(err, ErrNotModerator) {
		t.Fatalf("bob moderating: %v", err)
	}
}

func TestCommentStreamTime(t *testing.T) {
	s := newSwarm(t, map[testPeer][]byte{broadcasterPeer: nil, bob: nil})
	s.advance(2 * time.Second)
	watching := s.now.Add(-4 * time.Second) // bob is 4 s behind live
	_, b, err := s.ms[bob.id].comment(s.now, "goal!", watching)
	s.publish(bob.id, b, err)
	_, b, err = s.ms[bob.id].comment(s.now, "from the far past", s.now.Add(-time.Hour))
	s.publish(bob.id, b, err)
	log := s.ms[broadcasterPeer.id].commentLog()
	if len(log) != 2 || !log[1].At.Equal(watching) || !log[0].At.Equal(s.now.Add(-maxStreamLag)) {
		t.Fatalf("log = %+v", log)
	}
	if due := Due(log, watching.Add(-time.Second), watching); len(due) != 1 || due[0].Text != "goal!" {
		t.Fatalf("Due = %+v", due)
	}
	back, err := ParseLog(MarshalLog(log))
	if err != nil || len(back) != 2 || back[1].Text != "goal!" {
		t.Fatalf("log round trip: %v %+v", err, back)
	}
}

func TestRateLimiter(t *testing.T) {
	var l limiter
	r := Rate{Every: time.Second, Burst: 3}
	n := 0
	for range 10 {
		if l.allow(t0, bob.id, kindComment, r, true) {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("burst allowed %d, want 3", n)
	}
	if l.allow(t0.Add(500*time.Millisecond), bob.id, kindComment, r, true) {
		t.Fatal("allowed before a token was back")
	}
	if !l.allow(t0.Add(time.Second), bob.id, kindComment, r, true) {
		t.Fatal("refused after a token was back")
	}
	// A sustained sender gets the rate, no more.
	n = 0
	for i := range 2000 {
		if l.allow(t0.Add(10*time.Second+time.Duration(i)*time.Millisecond), bob.id, kindHeart, r, true) {
			n++
		}
	}
	if n != 3+1 { // the burst, then one a second
		t.Fatalf("1000 messages/s for 2 s: allowed %d, want 4", n)
	}
	l.sweep(t0.Add(time.Hour))
	if len(l.buckets) != 0 {
		t.Fatalf("sweep left %d buckets", len(l.buckets))
	}
}

// Presence is for listing identified viewers: only they send it, rarely,
// with the attestation on the join and every attestEvery-th beat; a
// broadcaster that restarted learns who they are again from those.
func TestSwarmPresenceOnlyIdentifiedAndSmall(t *testing.T) {
	s := newSwarm(t, map[testPeer][]byte{broadcasterPeer: nil, alice: attestation(alice.id, "alice", bootKey), bob: nil})
	s.advance(2 * time.Second)
	br := s.ms[broadcasterPeer.id]
	if v := br.viewersNow(tickInput{audience: 2}); len(v.Identified) != 1 || v.Identified[0].Peer != alice.id {
		t.Fatalf("after the joins: %+v", v)
	}
	for range 12 {
		s.advance(minPresence)
	}
	// What the broadcaster took: presence from alice only (bob is
	// anonymous), about one per presence interval.
	if got := br.stats.Accepted["presence"]; got < 6 || got > 14 {
		t.Fatalf("the broadcaster took %d presence messages in 6 minutes, want about one per %v from alice alone", got, minPresence)
	}
	if v := br.viewersNow(tickInput{audience: 2}); len(v.Identified) != 1 || v.Identified[0].Identity.Handle != "@alice" {
		t.Fatalf("alice's beats without her attestation lost her identity: %+v", v)
	}

	s.ms[broadcasterPeer.id] = newTestMachine(broadcasterPeer, nil) // restarted: knows nobody
	br = s.ms[broadcasterPeer.id]
	for range attestEvery + 2 {
		s.advance(minPresence + minPresence/2)
	}
	if v := br.viewersNow(tickInput{audience: 2}); len(v.Identified) != 1 || v.Identified[0].Peer != alice.id {
		t.Fatalf("the restarted broadcaster never learnt alice again: %+v", v)
	}
}

// A bootstrap that rotated its key publishes the old one with an end: chat
// believes what the old key signed before then, and nothing it signed
// after (a leaked retired key cannot mint identities), while keys given as
// Trusted stay believed whenever they signed.
func TestAttestationKeyRotation(t *testing.T) {
	old := rogueKey // retired at t0
	set, err := identity.NewTrustSet(identity.KeySet{Keys: []identity.Key{
		{Public: bootKey.Public().(ed25519.PublicKey), From: t0},
		{Public: old.Public().(ed25519.PublicKey), Until: t0},
	}})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Config{Broadcast: testBroadcast, Broadcaster: broadcasterPeer.id, Trust: set,
		Rand: rand.New(rand.NewPCG(1, 2))}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	m := newMachine(machineConfig{Config: cfg, self: viewerPeer.id, brKey: broadcasterPeer.priv.GetPublic()})
	issuedBy := func(key ed25519.PrivateKey, issued time.Time) []byte {
		a := &Attestation{Provider: "twitter", Account: "id-a", Handle: "@a", Name: "A", Peer: alice.id,
			Issued: issued, Expires: issued.Add(48 * time.Hour)}
		if err := a.Sign(key); err != nil {
			t.Fatal(err)
		}
		return a.Marshal()
	}
	for _, c := range []struct {
		name string
		att  []byte
		want error
	}{
		{"old key, before its end", issuedBy(old, t0.Add(-time.Hour)), nil},
		{"old key, after its end", issuedBy(old, t0.Add(time.Hour)), ErrUntrusted},
		{"new key, after its start", issuedBy(bootKey, t0.Add(time.Hour)), nil},
		{"new key, before its start", issuedBy(bootKey, t0.Add(-time.Hour)), ErrUntrusted},
	} {
		if e := m.verifyAttestation(t0.Add(2*time.Hour), c.att); !errors.Is(e.err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, e.err, c.want)
		}
	}
}

// TestSwarmReportOvertakesComment: a viewer that has a comment before the
// broadcaster does reports it at once; its report reaches the broadcaster
// first. The broadcaster keeps it until the comment arrives and calls the
// jury then. (Before, the report was dropped: CI's TestJury waited 20 s
// for a second conviction that never came.)
func TestSwarmReportOvertakesComment(t *testing.T) {
	peers := map[testPeer][]byte{broadcasterPeer: nil, mallory: nil, bob: nil, alice: nil, carol: nil}
	s := newSwarm(t, peers)
	s.advance(2 * time.Second)
	for id := range s.ms {
		s.publish(id, mustMarshal(t, env(s.now, envelope{Heart: &wireHeart{Count: 1}})), nil)
	}
	id, b, err := s.ms[mallory.id].comment(s.now, "buy cheap followers", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	br := s.ms[broadcasterPeer.id]
	for pid, m := range s.ms { // everyone but the broadcaster has it
		if pid == broadcasterPeer.id {
			continue
		}
		if e, res, _ := m.check(s.now, mallory.id, mallory.id, b); res == accept {
			m.deliver(s.now, mallory.id, mallory.id, e)
		}
	}
	rb, err := s.ms[bob.id].reportComment(s.now, id)
	s.publish(bob.id, rb, err)
	summoned := func() int {
		n := 0
		for _, evs := range s.evs {
			for _, e := range evs {
				if sm, ok := e.(*Summons); ok && sm.Comment == id {
					n++
				}
			}
		}
		return n
	}
	if n := summoned(); n != 0 {
		t.Fatalf("%d summoned before the broadcaster saw the comment", n)
	}
	s.advance(3 * time.Second)
	if e, res, _ := br.check(s.now, mallory.id, mallory.id, b); res == accept {
		br.deliver(s.now, mallory.id, mallory.id, e)
	} else {
		t.Fatalf("the broadcaster refused the comment: %v", res)
	}
	s.settle()
	if n := summoned(); n != 2 {
		t.Fatalf("%d jurors summoned once the comment arrived, want the 2 viewers besides author and reporter", n)
	}
}
