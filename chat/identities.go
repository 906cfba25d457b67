package chat

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/identity"
)

// Identities: a sender's attestation, verified once per distinct bytes and
// cached; a peer's last verified identity is remembered for the messages
// that come without one (presence beats).

// maxCache bounds the attestations verified and the identities known.
const maxCache = 4096

type identEntry struct {
	peer    peer.ID
	id      Identity
	expires time.Time
	err     error // nil, ErrUntrusted, or a forgery
}

// knownIdent is a peer's last verified identity and the attestation that
// proved it (verified again when the trust changes).
type knownIdent struct {
	id  Identity
	att []byte
}

// identity verifies a sender's attestation (cached by its bytes): nil for
// an anonymous sender, an error for a forged attestation (one whose
// signature does not verify under the issuer key it names, or that names
// another peer: every peer judges that alike, whatever keys it trusts). An
// attestation from an untrusted key or past its expiry leaves the sender
// anonymous.
func (m *machine) identity(now time.Time, from peer.ID, att []byte) (*Identity, error) {
	if len(att) == 0 {
		return nil, nil
	}
	e, ok := m.idents[string(att)]
	if !ok {
		e = m.verifyAttestation(now, att)
		if len(m.idents) >= maxCache {
			clear(m.idents)
		}
		m.idents[string(att)] = e
	}
	switch {
	case e.err != nil && e.err != ErrUntrusted:
		return nil, e.err
	case e.peer != from:
		return nil, fmt.Errorf("%w: for %s, presented by %s", ErrWrongPeer, e.peer, from)
	case e.err == ErrUntrusted, !now.Before(e.expires):
		return nil, nil
	}
	id := e.id
	if len(m.known) >= maxCache {
		clear(m.known)
	}
	m.known[from] = knownIdent{id: id, att: att}
	return &id, nil
}

func (m *machine) verifyAttestation(now time.Time, att []byte) identEntry {
	a, err := ParseAttestation(att)
	if err != nil {
		return identEntry{err: err}
	}
	// The signature is checked under the issuer key the attestation
	// names, trusted or not, then trust is looked up; peer and expiry are
	// checked on each use, so the entry can be cached.
	e := identEntry{peer: a.Peer, id: a.Identity(), expires: a.Expires}
	if a.VerifySignature() != nil {
		e.err = ErrBadSignature
	} else if m.cfg.trust.Verify(a, a.Peer, a.Expires.Add(-time.Nanosecond)) != nil {
		e.err = ErrUntrusted
	}
	return e
}

func (m *machine) knownIdentity(p peer.ID) *Identity {
	if k, ok := m.known[p]; ok {
		id := k.id
		return &id
	}
	return nil
}

// setTrust takes a new trust set (the bootstraps' keys and revocations as
// the node read them again): every attestation is judged afresh, the peers
// whose identity no longer holds (revoked, its key revoked) become
// anonymous at once, in the viewer list too, and so does this node if its
// own does not hold.
func (m *machine) setTrust(now time.Time, t *identity.TrustSet) {
	m.cfg.trust = t
	clear(m.idents)
	for p, k := range m.known {
		if p == m.cfg.self {
			continue
		}
		if e := m.verifyAttestation(now, k.att); e.err != nil || e.peer != p {
			delete(m.known, p)
		}
	}
	for p, v := range m.viewers {
		if k, ok := m.known[p]; !ok {
			delete(m.viewers, p)
		} else {
			id := k.id
			v.identity = &id
		}
	}
	m.setAttestation(now, m.cfg.Attestation)
}

// setAttestation takes this node's attestation (nil: anonymous), believed
// if the trust set verifies it for this node.
func (m *machine) setAttestation(now time.Time, att []byte) {
	m.cfg.Attestation, m.cfg.attested = att, nil
	m.attExpires = attestationExpiry(att)
	delete(m.known, m.cfg.self)
	if att == nil {
		return
	}
	a, err := ParseAttestation(att)
	if err != nil || m.cfg.trust.Verify(a, m.cfg.self, now) != nil {
		return
	}
	id := a.Identity()
	m.cfg.attested = &id
	m.known[m.cfg.self] = knownIdent{id: id, att: att}
}

func (m *machine) attestedExpiry() time.Time { return m.attExpires }

// attestationExpiry is when att expires (zero: none, or unreadable).
func attestationExpiry(att []byte) time.Time {
	if att == nil {
		return time.Time{}
	}
	a, err := ParseAttestation(att)
	if err != nil {
		return time.Time{}
	}
	return a.Expires
}

// author describes a sender for the application.
func (m *machine) author(p peer.ID, who *Identity) Author {
	a := Author{Peer: p, Identity: who, Broadcaster: p == m.cfg.Broadcaster, Moderator: m.isModerator(p)}
	return a
}
