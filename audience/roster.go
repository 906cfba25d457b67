package audience

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/peerscope/peerscope/identity"
	"github.com/peerscope/peerscope/internal/pbwire"
	"github.com/peerscope/peerscope/proto/audiencepb"
)

// Limits of a roster.
const (
	// MaxRosterSize bounds a signed roster.
	MaxRosterSize = 512 << 10
	// MaxRosterDevices bounds the devices of a roster, all members
	// together.
	MaxRosterDevices = 4096
	// MaxMemberDevices bounds one member's devices.
	MaxMemberDevices = 16
	// MaxAccountLen bounds a member's account ("provider:account").
	MaxAccountLen = identity.MaxProviderLen + 1 + identity.MaxAccountLen
)

// A Roster is who may watch a private broadcast: accounts, each with the
// devices (peer and device key fingerprint) the broadcaster wraps epoch
// secrets for and the tree and the topic admit. The broadcaster signs it;
// its version only grows (Follows), so a relay or a bootstrap cannot bring
// back an older roster that still lists a removed member.
type Roster struct {
	Broadcast string
	Version   uint64
	Issued    time.Time
	Members   []Member
	Signature []byte

	body    []byte
	peers   map[peer.ID]bool
	devices map[Fingerprint]bool
}

// A Member is an account of a roster and its devices.
type Member struct {
	Account string // identity.Identity.AccountKey: "provider:account"
	Devices []Device
}

// A Device is a member's device.
type Device struct {
	Peer        peer.ID
	Fingerprint Fingerprint
}

// Sign signs the roster with the broadcast's key, checking its fields (at
// most MaxRosterDevices devices, no account or device twice).
func (r *Roster) Sign(broadcaster crypto.PrivKey) error {
	s, err := broadcasterSigner(broadcaster, r.Broadcast)
	if err != nil {
		return err
	}
	if err := r.index(); err != nil {
		return fmt.Errorf("%w: roster: %w", ErrMalformed, err)
	}
	pb := &audiencepb.Roster{Broadcast: r.Broadcast, Version: r.Version, Issued: pbwire.UnixNano(r.Issued)}
	for _, m := range r.Members {
		pm := &audiencepb.Member{Account: m.Account}
		for _, d := range m.Devices {
			pm.Devices = append(pm.Devices, &audiencepb.Device{Peer: []byte(d.Peer), Fingerprint: d.Fingerprint[:]})
		}
		pb.Members = append(pb.Members, pm)
	}
	if r.body, err = deterministic.Marshal(pb); err != nil {
		return fmt.Errorf("%w: roster: %w", ErrMalformed, err)
	}
	if len(r.body) > MaxRosterSize-128 {
		return fmt.Errorf("%w: roster of %d bytes", ErrMalformed, len(r.body))
	}
	r.Signature = s.sign(rosterDomain, r.body)
	return nil
}

// index checks the fields and builds the lookups.
func (r *Roster) index() error {
	if err := checkBroadcast(r.Broadcast); err != nil {
		return err
	}
	if r.Version == 0 {
		return fmt.Errorf("version 0")
	}
	accounts := map[string]bool{}
	r.peers, r.devices = map[peer.ID]bool{}, map[Fingerprint]bool{}
	n := 0
	for _, m := range r.Members {
		if m.Account == "" || len(m.Account) > MaxAccountLen || !identity.ValidText(m.Account) || accounts[m.Account] {
			return fmt.Errorf("account %q empty, too long, not text or listed twice", clip(m.Account))
		}
		accounts[m.Account] = true
		if len(m.Devices) > MaxMemberDevices {
			return fmt.Errorf("%d devices for %q", len(m.Devices), clip(m.Account))
		}
		for _, d := range m.Devices {
			if n++; n > MaxRosterDevices {
				return fmt.Errorf("over %d devices", MaxRosterDevices)
			}
			if d.Peer == "" || r.devices[d.Fingerprint] {
				return fmt.Errorf("a device of %q without a peer, or listed twice", clip(m.Account))
			}
			r.peers[d.Peer], r.devices[d.Fingerprint] = true, true
		}
	}
	return nil
}

// Marshal returns the signed roster's wire form.
func (r *Roster) Marshal() []byte { return marshalSigned(r.body, r.Signature) }

// ParseRoster decodes a signed roster and checks its form and limits (the
// devices are counted before the generated code makes them), not its
// signature: see Verify.
func ParseRoster(b []byte) (*Roster, error) {
	var pb audiencepb.Roster
	body, sig, err := parseSigned(b, MaxRosterSize, &pb, countRoster)
	if err != nil {
		return nil, fmt.Errorf("%w: roster: %w", ErrMalformed, err)
	}
	r := &Roster{Broadcast: pb.Broadcast, Version: pb.Version, Issued: pbwire.FromUnixNano(pb.Issued), Signature: sig, body: body}
	for _, pm := range pb.Members {
		m := Member{Account: pm.Account}
		for _, pd := range pm.Devices {
			d := Device{}
			if d.Peer, err = decodePeer(pd.Peer); err != nil {
				return nil, fmt.Errorf("%w: roster: %w", ErrMalformed, err)
			}
			if len(pd.Fingerprint) != FingerprintSize {
				return nil, fmt.Errorf("%w: roster: fingerprint of %d bytes", ErrMalformed, len(pd.Fingerprint))
			}
			copy(d.Fingerprint[:], pd.Fingerprint)
			m.Devices = append(m.Devices, d)
		}
		r.Members = append(r.Members, m)
	}
	if err := r.index(); err != nil {
		return nil, fmt.Errorf("%w: roster: %w", ErrMalformed, err)
	}
	return r, nil
}

// Verify checks that the roster is of broadcast and signed by its
// broadcaster.
func (r *Roster) Verify(broadcast string) error {
	if r.Broadcast != broadcast {
		return fmt.Errorf("%w: a roster of %q", ErrWrongBroadcast, clip(r.Broadcast))
	}
	if r.body == nil {
		return fmt.Errorf("%w: roster never signed", ErrBadSignature)
	}
	if err := verifyBroadcaster(r.Broadcast, rosterDomain, r.body, r.Signature); err != nil {
		return fmt.Errorf("roster %d: %w", r.Version, err)
	}
	return nil
}

// Follows checks that r may replace prev (nil: r is the first): the same
// broadcast and a greater version. Verify both first.
func (r *Roster) Follows(prev *Roster) error {
	if prev == nil {
		return nil
	}
	if r.Broadcast != prev.Broadcast {
		return fmt.Errorf("%w: roster of %q after one of %q", ErrWrongBroadcast, clip(r.Broadcast), clip(prev.Broadcast))
	}
	if r.Version <= prev.Version {
		return fmt.Errorf("%w: version %d after %d", ErrRosterRollback, r.Version, prev.Version)
	}
	return nil
}

// HasPeer reports whether the roster lists a device with peer ID p (what
// the tree's attach check and the topic's peer filter ask).
func (r *Roster) HasPeer(p peer.ID) bool { return r.peers[p] }

// HasDevice reports whether the roster lists the device key f (what a
// bootstrap's mailbox asks before it takes a bundle for f).
func (r *Roster) HasDevice(f Fingerprint) bool { return r.devices[f] }

// Admits checks a peer's token against the roster at now: the token must
// verify (Token.Verify), and if the roster is as new as the token's or
// newer, list the peer (ErrNotMember). A token newer than the roster is
// the broadcaster's word for a member added since: the parent believes it
// until it has that roster. The roster is the one the parent holds, which
// it verified (Verify, Follows) when it took it.
func (r *Roster) Admits(t *Token, p peer.ID, now time.Time) error {
	if err := t.Verify(r.Broadcast, p, now); err != nil {
		return err
	}
	if t.RosterVersion <= r.Version && !r.peers[p] {
		return fmt.Errorf("%w: %s is not in roster %d", ErrNotMember, p, r.Version)
	}
	return nil
}

// countRoster counts a roster's members and devices in its body's bytes
// before the generated code makes them, so that a small message cannot make
// it build hundreds of thousands of empty entries.
func countRoster(body []byte) error {
	members := 0
	return pbwire.EachField(body, func(num protowire.Number, typ protowire.Type, _ uint64, raw []byte) error {
		if num != 4 || typ != protowire.BytesType {
			return nil
		}
		if members++; members > MaxRosterDevices {
			return fmt.Errorf("over %d members", MaxRosterDevices)
		}
		devices := 0
		return pbwire.EachField(raw, func(num protowire.Number, typ protowire.Type, _ uint64, _ []byte) error {
			if num == 2 && typ == protowire.BytesType {
				if devices++; devices > MaxMemberDevices {
					return fmt.Errorf("over %d devices for a member", MaxMemberDevices)
				}
			}
			return nil
		})
	})
}
