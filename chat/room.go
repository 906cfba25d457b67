package chat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/peerscope/peerscope/identity"
	"github.com/peerscope/peerscope/internal/clock"
	"github.com/peerscope/peerscope/internal/owner"
)

// tickInterval is the floor of the machine's ticks: they come when
// something is due (machine.nextTick: a beat, a heart flush, presence, a
// jury deadline, an expiry), never closer together than this, and a
// deadline is met at most this late, as on the fixed 250 ms ticker the
// room had before. The broadcaster, always due, ticks at this pace.
const tickInterval = 250 * time.Millisecond

// validateTimeout bounds one validation: past it pubsub ignores the message.
const validateTimeout = 2 * time.Second

// publishQueue bounds what the room's own goroutine may queue for
// publication (beats, hearts, presence, jury calls, mutes).
const publishQueue = 256

// Room is one broadcast's chat on one node: a GossipSub topic, the
// validators every message passes before this node accepts or relays it,
// and the state machine behind them.
//
// One goroutine owns the state machine. Pubsub's validation workers hand it
// each message and wait for the verdict; a reader hands it what pubsub
// delivers; a ticker armed for the machine's next deadline drives its
// timers (an idle viewer's room wakes for nothing); a publisher sends what
// it queues (the owner never calls pubsub, whose own loop may be waiting
// on it).
type Room struct {
	h     host.Host
	ps    *pubsub.PubSub
	topic *pubsub.Topic
	sub   *pubsub.Subscription
	name  string
	proto protocol.ID
	cfg   Config
	log   *slog.Logger
	m     *machine // owned by run

	ctx       context.Context // cancelled by Close
	cancel    context.CancelFunc
	checks    chan checkReq
	delivered chan delivery
	calls     *owner.Inbox // what the API asks of the owner
	fetched   chan []*signedAction
	pubq      chan []byte
	events    chan Event
	serving   chan struct{} // semaphore of state answers
	quit      chan struct{}
	done      chan struct{} // closed when the owner has stopped

	mu        sync.Mutex
	closed    bool
	wg        sync.WaitGroup // reader, publisher, fetches, state answers
	closeOnce sync.Once
	fetching  bool // owned by run
	dropped   atomic.Uint64

	// What Audience, WebViewers and Hearts said, refreshed once a tick
	// (owned by run).
	in   tickInput
	inAt time.Time
	// What TrustSource and AttestationSource last gave (owned by run).
	trustFrom *identity.TrustSet
	attFrom   []byte
}

type checkReq struct {
	from  peer.ID
	src   peer.ID
	data  []byte
	reply chan checkResult
}

type checkResult struct {
	env *envelope
	res result
	err error
}

type delivery struct {
	from, via peer.ID
	env       *envelope
}

// Join joins the chat of cfg.Broadcast on ps, a GossipSub router on host h,
// and returns the room. ps must sign its messages (pubsub's default,
// StrictSign): the validators take a message's author from its signature.
// Join registers the topic's validator, so a PubSub serves one Room per
// broadcast; Close undoes all of it.
func Join(ctx context.Context, ps *pubsub.PubSub, h host.Host, cfg Config) (*Room, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if ps == nil || h == nil {
		return nil, fmt.Errorf("%w: nil pubsub or host", ErrInvalidConfig)
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	brKey, err := cfg.Broadcaster.ExtractPublicKey()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	mc := machineConfig{Config: cfg, self: h.ID(), brKey: brKey}
	if h.ID() == cfg.Broadcaster {
		mc.selfKey = h.Peerstore().PrivKey(h.ID())
		if mc.selfKey == nil {
			return nil, fmt.Errorf("%w: the broadcaster's host has no private key", ErrInvalidConfig)
		}
	}
	log := cfg.Logger.With("chat", shortID(h.ID()))
	if cfg.Attestation != nil {
		a, _ := ParseAttestation(cfg.Attestation) // withDefaults parsed it
		switch err := cfg.trust.Verify(a, h.ID(), cfg.Clock.Now()); {
		case err == nil:
			id := a.Identity()
			mc.attested = &id
		case errors.Is(err, ErrWrongPeer):
			return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
		default:
			log.Warn("own attestation not usable: commenting anonymously", "err", err)
		}
	}
	r := &Room{
		h:         h,
		ps:        ps,
		name:      cfg.topicName(),
		proto:     protocol.ID(StateProtocol + "/" + cfg.Broadcast),
		cfg:       cfg,
		log:       log,
		m:         newMachine(mc),
		checks:    make(chan checkReq, 64),
		delivered: make(chan delivery, 64),
		fetched:   make(chan []*signedAction),
		pubq:      make(chan []byte, publishQueue),
		events:    make(chan Event, cfg.EventBuffer),
		serving:   make(chan struct{}, 4),
		quit:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	r.calls = owner.New(0, r.done, ErrClosed)
	r.attFrom = bytes.Clone(cfg.Attestation)
	if cfg.TrustSource != nil {
		r.trustFrom = cfg.Trust // taken as the first: a new one is a change
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	if err := ps.RegisterTopicValidator(r.name, r.validate,
		pubsub.WithValidatorInline(true), pubsub.WithValidatorTimeout(validateTimeout)); err != nil {
		r.cancel()
		return nil, fmt.Errorf("chat: validator for %s: %w", r.name, err)
	}
	topic, err := ps.Join(r.name)
	if err != nil {
		r.cancel()
		_ = ps.UnregisterTopicValidator(r.name)
		return nil, fmt.Errorf("chat: join %s: %w", r.name, err)
	}
	if err := topic.SetScoreParams(TopicScoreParams()); err != nil {
		log.Debug("no peer scoring for the chat topic", "err", err) // the router has scoring off
	}
	sub, err := topic.Subscribe(pubsub.WithBufferSize(256))
	if err != nil {
		r.cancel()
		_ = topic.Close()
		_ = ps.UnregisterTopicValidator(r.name)
		return nil, fmt.Errorf("chat: subscribe %s: %w", r.name, err)
	}
	r.topic, r.sub = topic, sub
	h.SetStreamHandler(r.proto, r.serveState)
	r.wg.Add(2)
	go r.run()
	go r.read()
	go r.publishLoop()
	return r, nil
}

// PubSubOptions are the options the node should build its GossipSub router
// with (beside its own):
//   - strict signing, which the validators rely on for every message's
//     author;
//   - peer scoring with only the invalid-message penalty (P4) weighted, so
//     that a peer whose messages the validators reject (a forger, or a
//     sender flooding its own messages) is graylisted within a few dozen
//     messages: its RPCs are then dropped before any signature check, and
//     a flood costs its neighbours next to nothing. Each Room sets its
//     topic's weights (TopicScoreParams);
//   - a validation queue deep enough that a burst reaching one peer does
//     not crowd its other messages out before that (pubsub drops what does
//     not fit, whoever sent it);
//   - lighter gossip (GossipSubParams).
func PubSubOptions() []pubsub.Option {
	return []pubsub.Option{
		pubsub.WithGossipSubParams(GossipSubParams()),
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithPeerScore(&pubsub.PeerScoreParams{
			SkipAtomicValidation: true,
			Topics:               map[string]*pubsub.TopicScoreParams{},
			AppSpecificScore:     func(peer.ID) float64 { return 0 },
			DecayInterval:        pubsub.DefaultDecayInterval,
			DecayToZero:          pubsub.DefaultDecayToZero,
			RetainScore:          10 * time.Minute,
		}, &pubsub.PeerScoreThresholds{
			SkipAtomicValidation: true,
			GossipThreshold:      -10,
			PublishThreshold:     -50,
			GraylistThreshold:    -80,
		}),
		pubsub.WithValidateQueueSize(1024),
		pubsub.WithPeerOutboundQueueSize(256),
	}
}

// GossipSubParams are GossipSub's defaults with lighter gossip. Every joiner
// contacts the broadcaster, so the broadcaster is connected to most of the
// audience, and each of those picks it now and then as a gossip target: with
// the defaults (IHAVE to at least 6 non-mesh peers each heartbeat, for the
// messages of the last 3 heartbeats), a steady beat every 2 s made about one
// IHAVE a second per viewer arrive at the broadcaster, the largest part of
// its inbound chat traffic. Here a node gossips to 1 peer (or a twentieth
// of its non-mesh peers), and only the last heartbeat's messages. Gossip is
// GossipSub's repair for a message the mesh's eager push missed; a chat
// message still reaches a node through any of its D = 6 mesh peers, and a
// missed one can still be asked for (IWANT) while the message cache holds it.
func GossipSubParams() pubsub.GossipSubParams {
	p := pubsub.DefaultGossipSubParams()
	p.Dlazy = 1
	p.GossipFactor = 0.05
	p.HistoryGossip = 1
	return p
}

// TopicScoreParams are a room topic's peer-score weights: each message the
// validators reject counts against the peer that sent it, squared (ten
// put it past PubSubOptions' graylist threshold), forgotten over about ten
// minutes. Nothing else is scored: a viewer's traffic is too uneven for
// delivery-rate scores.
func TopicScoreParams() *pubsub.TopicScoreParams {
	return &pubsub.TopicScoreParams{
		SkipAtomicValidation:           true,
		TopicWeight:                    1,
		TimeInMeshQuantum:              time.Second, // unweighted, but pubsub divides by it
		InvalidMessageDeliveriesWeight: -1,
		InvalidMessageDeliveriesDecay:  pubsub.ScoreParameterDecay(10 * time.Minute),
	}
}

func shortID(p peer.ID) string {
	s := p.String()
	if len(s) > 8 {
		return s[len(s)-8:]
	}
	return s
}

// Topic returns the room's GossipSub topic name.
func (r *Room) Topic() string { return r.name }

// Events returns the channel of the room's events: comments, hearts,
// moderation, jury summons (and, on the broadcaster, reports and
// verdicts). Events that do not fit its buffer are dropped (and counted in
// Stats); the log keeps every comment. It is closed by Close.
func (r *Room) Events() <-chan Event { return r.events }

// Comment sends a comment, placed in the stream at the time it is sent.
func (r *Room) Comment(ctx context.Context, text string) (CommentID, error) {
	return r.CommentAt(ctx, text, time.Time{})
}

// CommentAt sends a comment placed in the stream at at: the wallclock of
// the frame its author was watching (the player knows it), so a replay
// shows it where it belongs. It fails with ErrNotReady, ErrCommentsOff,
// ErrFollowersOnly, ErrBlocked, ErrMuted, ErrRateLimited or ErrMalformed
// (bad text) when every peer would refuse it.
func (r *Room) CommentAt(ctx context.Context, text string, at time.Time) (CommentID, error) {
	var id CommentID
	var b []byte
	var perr error
	if err := r.call(ctx, func() { id, b, perr = r.m.comment(r.now(), text, at) }); err != nil {
		return CommentID{}, err
	}
	if perr != nil {
		return CommentID{}, perr
	}
	return id, r.publish(ctx, b)
}

// Heart adds n taps. They go up the tree (Config.Tap), or, for a node
// outside one, over the topic aggregated, one message per heart interval.
// Every node floats the audience's hearts as the broadcaster's beats count
// them (Hearts events), less its own.
func (r *Room) Heart(ctx context.Context, n int) error {
	return r.HeartAt(ctx, n, time.Time{})
}

// HeartAt adds n taps made while the tapper watched the frame captured at
// at (the broadcast's wallclock, as CommentAt's), so that the replay floats
// them at that frame; a zero at places them where they reach the
// broadcaster.
func (r *Room) HeartAt(ctx context.Context, n int, at time.Time) error {
	return r.call(ctx, func() { r.m.heart(r.now(), n, at) })
}

// Report reports a comment this node has seen. The broadcaster's node calls
// a jury of random viewers; a majority mutes the author.
func (r *Room) Report(ctx context.Context, id CommentID) error {
	var b []byte
	var perr error
	if err := r.call(ctx, func() { b, perr = r.m.reportComment(r.now(), id) }); err != nil {
		return err
	}
	if perr != nil {
		return perr
	}
	return r.publish(ctx, b)
}

// Vote casts this juror's vote on a jury call (a Summons): guilty mutes.
func (r *Room) Vote(ctx context.Context, call uint64, guilty bool) error {
	var b []byte
	var perr error
	if err := r.call(ctx, func() { b, perr = r.m.vote(r.now(), call, guilty) }); err != nil {
		return err
	}
	if perr != nil {
		return perr
	}
	return r.publish(ctx, b)
}

// SetCommentsOff turns comments off (or on again) for all but the
// broadcaster and its moderators. The broadcaster or a moderator may.
func (r *Room) SetCommentsOff(ctx context.Context, off bool) error {
	return r.moderate(ctx, action{Op: OpCommentsOff, On: off})
}

// SetFollowersOnly limits comments to the accounts in follows
// ("provider:account", at most MaxFollows), or lifts the limit. Only the
// broadcaster may.
func (r *Room) SetFollowersOnly(ctx context.Context, on bool, follows []string) error {
	if !on {
		follows = nil
	}
	return r.moderate(ctx, action{Op: OpFollowersOnly, On: on, List: slices.Clone(follows)})
}

// Block blocks a user: its peer and, if it was seen with a verified
// identity, its account. Nothing it sends reaches anybody. The broadcaster
// or a moderator may.
func (r *Room) Block(ctx context.Context, p peer.ID) error {
	return r.moderate(ctx, action{Op: OpBlock, Target: userOfPeer(p), On: true})
}

// Unblock lifts a Block.
func (r *Room) Unblock(ctx context.Context, p peer.ID) error {
	return r.moderate(ctx, action{Op: OpBlock, Target: userOfPeer(p)})
}

// Delete deletes a comment everywhere (and from the replay). The
// broadcaster or a moderator may.
func (r *Room) Delete(ctx context.Context, id CommentID) error {
	return r.moderate(ctx, action{Op: OpDelete, Target: id.String()})
}

// SetModerator names p a moderator, or revokes it. Only the broadcaster may.
func (r *Room) SetModerator(ctx context.Context, p peer.ID, on bool) error {
	return r.moderate(ctx, action{Op: OpModerator, Target: userOfPeer(p), On: on})
}

func (r *Room) moderate(ctx context.Context, a action) error {
	var out [][]byte
	var perr error
	if err := r.call(ctx, func() { out, perr = r.m.moderate(r.now(), a) }); err != nil {
		return err
	}
	if perr != nil {
		return perr
	}
	for _, b := range out {
		if err := r.publish(ctx, b); err != nil {
			return err
		}
	}
	return nil
}

// Viewers returns who watches live.
func (r *Room) Viewers(ctx context.Context) (Viewers, error) {
	var v Viewers
	err := r.call(ctx, func() { v = r.m.viewersNow(r.input()) })
	return v, err
}

// Moderation returns the moderation state in force here.
func (r *Room) Moderation(ctx context.Context) (Moderation, error) {
	var st Moderation
	err := r.call(ctx, func() { st = r.m.moderation(r.now()) })
	return st, err
}

// Log returns the comments kept for replay, in stream order (At), deleted
// ones flagged.
func (r *Room) Log(ctx context.Context) ([]Comment, error) {
	var l []Comment
	err := r.call(ctx, func() { l = r.m.commentLog() })
	return l, err
}

// HeartLog returns, on the broadcaster, the hearts counted so far, a count
// per second, for the replay (empty on a viewer).
func (r *Room) HeartLog(ctx context.Context) (HeartLog, error) {
	var l HeartLog
	err := r.call(ctx, func() { l = HeartLog{From: r.m.heartLog.From, Counts: slices.Clone(r.m.heartLog.Counts)} })
	return l, err
}

// Stats returns what the validators decided so far.
func (r *Room) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	err := r.call(ctx, func() { s = r.m.statsCopy() })
	s.EventsDropped = r.dropped.Load()
	return s, err
}

// Close says goodbye (a presence leave, if this node sent presence), leaves
// the topic, unregisters the validator and stream handler, and stops every
// goroutine the room started. It is safe to call more than once.
func (r *Room) Close() error {
	r.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		var bye []byte
		if r.call(ctx, func() { bye = r.m.leave(r.now()) }) == nil && bye != nil {
			_ = r.send(ctx, bye)
		}
		cancel()
		r.h.RemoveStreamHandler(r.proto)
		r.mu.Lock()
		r.closed = true
		r.mu.Unlock()
		r.cancel()
		close(r.quit)
		<-r.done
		r.sub.Cancel()
		_ = r.ps.UnregisterTopicValidator(r.name)
		r.wg.Wait()
		_ = r.topic.Close()
		close(r.events)
	})
	return nil
}

func (r *Room) now() time.Time { return r.cfg.Clock.Now() }

// input returns what the application says about the audience, asking it
// at most once a tick (the broadcaster's own count is then at most a tick
// behind the tree). It runs on the owner goroutine.
func (r *Room) input() tickInput {
	now := r.now()
	if !r.inAt.IsZero() && now.Sub(r.inAt) < tickInterval {
		return r.in
	}
	r.inAt = now
	r.in = tickInput{}
	if r.cfg.Audience != nil && r.m.isBroadcaster {
		r.in.audience = r.cfg.Audience()
	}
	if r.cfg.WebViewers != nil && r.m.isBroadcaster {
		r.in.web = r.cfg.WebViewers()
	}
	if r.cfg.Hearts != nil && r.m.isBroadcaster {
		r.in.hearts = r.cfg.Hearts()
	}
	if r.cfg.Edge != nil && r.m.isBroadcaster {
		r.in.edge = r.cfg.Edge()
	}
	return r.in
}

// publish sends an envelope this node made. Pubsub runs the validators on
// it here first (they reach the owner goroutine, so this must never run
// there).
func (r *Room) publish(ctx context.Context, b []byte) error {
	err := r.send(ctx, b)
	var ve pubsub.ValidationError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pubsub.ErrTopicClosed):
		return ErrClosed
	case errors.As(err, &ve):
		return fmt.Errorf("chat: refused by this node's own validator: %s", ve.Reason)
	}
	return err
}

// call runs f on the owner goroutine (ErrClosed once the room is closed).
func (r *Room) call(ctx context.Context, f func()) error { return r.calls.Call(ctx, f) }

// validate is the topic validator pubsub runs (inline, on its validation
// workers) for every message, local ones included, before it delivers or
// relays it.
func (r *Room) validate(ctx context.Context, src peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	if len(msg.Signature) == 0 || msg.GetFrom() == "" {
		return pubsub.ValidationReject // the author must be authenticated
	}
	data, ok := r.opened(msg.GetFrom(), msg.Data)
	if !ok {
		return pubsub.ValidationIgnore
	}
	req := checkReq{from: msg.GetFrom(), src: src, data: data, reply: make(chan checkResult, 1)}
	select {
	case r.checks <- req:
	case <-r.quit:
		return pubsub.ValidationIgnore
	case <-ctx.Done():
		return pubsub.ValidationIgnore
	}
	var res checkResult
	select {
	case res = <-req.reply:
	case <-r.quit:
		return pubsub.ValidationIgnore
	}
	switch res.res {
	case accept:
		msg.ValidatorData = res.env
		return pubsub.ValidationAccept
	case reject:
		return pubsub.ValidationReject
	}
	return pubsub.ValidationIgnore
}

// --- goroutines ---

// run is the owner goroutine. The machine ticks when nextTick says
// something is due, asked again after every input. TrustSource and
// AttestationSource, which change without telling the room, are asked
// whenever it wakes, before it handles what woke it: a check, a comment or
// a viewer list is judged with the trust and identity of that moment, and
// what they make due (this node's presence after a sign-in) goes out at
// the next wake.
func (r *Room) run() {
	defer close(r.done)
	t := clock.NewPacer(r.cfg.Clock, tickInterval, 0)
	defer t.Stop()
	r.m.tick(r.now(), r.input())
	r.drain()
	t.Ticked(r.now(), r.m.nextTick())
	for {
		ticked := false
		select {
		case q := <-r.checks:
			r.refreshTrust()
			env, res, err := r.m.check(r.now(), q.from, q.src, q.data)
			if res != accept {
				r.log.Debug("refused", "from", shortID(q.from), "result", res, "err", err)
			}
			q.reply <- checkResult{env, res, err}
		case d := <-r.delivered:
			r.refreshTrust()
			r.m.deliver(r.now(), d.from, d.via, d.env)
		case <-t.C():
			r.refreshTrust()
			r.m.tick(r.now(), r.input())
			ticked = true
		case f := <-r.calls.Calls():
			r.refreshTrust()
			f()
		case st := <-r.fetched:
			r.refreshTrust()
			r.fetching = false
			r.m.applyState(r.now(), st)
		case <-r.quit:
			return
		}
		r.drain()
		if now := r.now(); ticked {
			t.Ticked(now, r.m.nextTick())
		} else {
			t.Changed(now, r.m.nextTick())
		}
	}
}

// refreshTrust asks TrustSource and AttestationSource what they hold now
// and hands the machine what changed. It runs on the owner goroutine.
func (r *Room) refreshTrust() {
	now := r.now()
	if src := r.cfg.TrustSource; src != nil {
		if t := src(); t != nil && t != r.trustFrom {
			r.trustFrom = t
			r.m.setTrust(now, t.With(r.cfg.Trusted...))
			r.log.Debug("trust refreshed", "keys", t.Len(), "revocations", t.Revocations())
		}
	}
	if src := r.cfg.AttestationSource; src != nil {
		if att := src(); !bytes.Equal(att, r.attFrom) {
			r.attFrom = bytes.Clone(att)
			if att == nil || validOwn(att) {
				r.m.setAttestation(now, r.attFrom)
			}
		}
	}
}

// validOwn reports whether att parses (a node's own attestation, from its
// community side: never a stranger's).
func validOwn(att []byte) bool {
	_, err := ParseAttestation(att)
	return err == nil
}

// drain carries out the machine's ready without ever blocking: events the
// application does not take and messages the publisher cannot take are
// dropped.
func (r *Room) drain() {
	rd := r.m.takeReady()
	if r.cfg.Tap != nil {
		for _, t := range rd.taps {
			r.cfg.Tap(t.N, t.At)
		}
	}
	if r.cfg.LiveEdge != nil && rd.edge > 0 {
		r.cfg.LiveEdge(rd.edge)
	}
	for _, e := range rd.events {
		select {
		case r.events <- e:
		default:
			r.dropped.Add(1)
		}
	}
	for _, b := range rd.publish {
		select {
		case r.pubq <- b:
		default:
			r.log.Warn("publish queue full: message dropped")
		}
	}
	if len(rd.fetch) > 0 && !r.fetching {
		r.mu.Lock()
		if !r.closed {
			r.fetching = true
			r.wg.Add(1)
			go r.fetch(rd.fetch)
		}
		r.mu.Unlock()
	}
}

// read hands what pubsub delivers to the owner.
func (r *Room) read() {
	defer r.wg.Done()
	for {
		msg, err := r.sub.Next(r.ctx)
		if err != nil {
			return
		}
		env, ok := msg.ValidatorData.(*envelope)
		if !ok {
			continue
		}
		select {
		case r.delivered <- delivery{from: msg.GetFrom(), via: msg.ReceivedFrom, env: env}:
		case <-r.quit:
			return
		}
	}
}

// publishLoop publishes what the owner queued.
func (r *Room) publishLoop() {
	defer r.wg.Done()
	for {
		select {
		case b := <-r.pubq:
			if err := r.send(r.ctx, b); err != nil {
				r.log.Debug("publish", "err", err)
			}
		case <-r.quit:
			return
		}
	}
}
