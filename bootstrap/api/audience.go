package api

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/audience"
	"github.com/peerscope/peerscope/identity"
)

// The private-audience keys role (issue 13). The bootstrap holds only what
// package audience says it may: device keys (public), rosters and bundles,
// all signed by others and kept as their bytes, so that it can store, check
// and serve them without seeing a secret. Its own word is the
// DeviceAttestation: that a device key belongs to an account, because the
// peer that signed it was signed in as that account when it published it.
//
//	device:      PUT  /api/v1/device-keys {device_key}              signed, signed in ─► DeviceKeyEntry
//	anyone:      GET  /api/v1/device-keys?account=K&handle=H         ─► DeviceKeysResponse
//	broadcaster: GET  /api/v1/audience/mutuals                       signed, signed in ─► MutualsResponse
//	broadcaster: PUT  /api/v1/broadcasts/{id}/audience {roster}      signed by the broadcaster, signed in ─► RosterResponse
//	member:      GET  /api/v1/broadcasts/{id}/audience               signed by a roster device (or the broadcaster)
//	broadcaster: PUT  /api/v1/broadcasts/{id}/bundles {bundles}      signed by the broadcaster, signed in ─► BundlesStored
//	member:      GET  /api/v1/broadcasts/{id}/bundles?since=E        signed by a roster device ─► BundlesResponse
//	broadcaster: PUT  /api/v1/broadcasts/{id}/tokens {tokens}        signed by the broadcaster, signed in ─► TokensStored
//	member:      GET  /api/v1/broadcasts/{id}/tokens/{peer}          signed by that peer, a roster device ─► TokenResponse
//	member:      GET  /api/v1/invitations                            signed, signed in ─► InvitationsResponse
//	account:     PUT/GET/DELETE /api/v1/groups/{name}, GET /api/v1/groups   signed, signed in

// DeviceKeyPublish is what a signed-in node PUTs to /api/v1/device-keys:
// its audience device key (audience.DeviceKey.Marshal), signed by the
// node's own identity key, whose peer is the request's signer.
type DeviceKeyPublish struct {
	DeviceKey []byte `json:"device_key"`
}

// DeviceKeyEntry is a device key as the bootstrap serves it: the bytes the
// device signed, unchanged, and the bootstrap's attestation of it to an
// account (a Signed DeviceAttestation). Open checks both.
type DeviceKeyEntry struct {
	DeviceKey   []byte  `json:"device_key"`
	Attestation *Signed `json:"attestation"`
}

// DeviceAttestation is the bootstrap's countersignature of a device key:
// the key named by its fingerprint belongs to Account, whose node Peer
// published it while signed in. Signed with the bootstrap's current
// attestation key (Issuer), so a node believes it exactly as it believes
// that bootstrap's identity attestations (identity.TrustSet.Trusts).
type DeviceAttestation struct {
	Bootstrap   string            `json:"bootstrap"` // the bootstrap's fingerprint
	Issuer      ed25519.PublicKey `json:"issuer"`
	Account     string            `json:"account"` // provider:subject
	Handle      string            `json:"handle,omitempty"`
	Peer        string            `json:"peer"`
	Fingerprint []byte            `json:"fingerprint"` // audience.Fingerprint, 32 bytes
	Issued      time.Time         `json:"issued"`
	// Expires is the first of the device key's expiry, the session's and
	// the attestation lifetime's.
	Expires time.Time `json:"expires"`
}

// deviceAttestationDomain separates device attestations from anything
// else an attestation key signs.
const deviceAttestationDomain = "peerscope/bootstrap-device-key/1\x00"

// MaxDeviceAttestation bounds a device attestation's body.
const MaxDeviceAttestation = 2 << 10

// SignDeviceAttestation signs a device attestation with an attestation key
// (its public half is written as the Issuer).
func SignDeviceAttestation(key ed25519.PrivateKey, a DeviceAttestation) (*Signed, error) {
	a.Issuer = key.Public().(ed25519.PublicKey)
	body, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	return &Signed{Body: body, Signature: ed25519.Sign(key, append([]byte(deviceAttestationDomain), body...))}, nil
}

// ParseDeviceAttestation decodes a signed device attestation's body
// (strict JSON, the fields' forms) without checking who signed it: see
// OpenDeviceAttestation.
func ParseDeviceAttestation(s *Signed) (DeviceAttestation, error) {
	var a DeviceAttestation
	if s == nil || len(s.Body) == 0 || len(s.Body) > MaxDeviceAttestation {
		return a, fmt.Errorf("%w: a device attestation of 1 to %d bytes", ErrBadRequest, MaxDeviceAttestation)
	}
	dec := json.NewDecoder(bytes.NewReader(s.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return a, fmt.Errorf("%w: device attestation: %w", ErrBadRequest, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return a, fmt.Errorf("%w: device attestation: data after the object", ErrBadRequest)
	}
	p, err := peer.Decode(a.Peer)
	switch {
	case len(a.Issuer) != ed25519.PublicKeySize || len(a.Fingerprint) != audience.FingerprintSize:
		return a, fmt.Errorf("%w: device attestation: issuer or fingerprint of the wrong size", ErrBadRequest)
	case err != nil || p.String() != a.Peer:
		return a, fmt.Errorf("%w: device attestation: peer %q", ErrBadRequest, clip(a.Peer, 80))
	case CheckAccountKey(a.Account) != nil || !ValidFingerprint(a.Bootstrap):
		return a, fmt.Errorf("%w: device attestation: account or bootstrap", ErrBadRequest)
	case !identity.ValidText(a.Handle) || len(a.Handle) > identity.MaxHandleLen:
		return a, fmt.Errorf("%w: device attestation: handle", ErrBadRequest)
	case a.Issued.IsZero() || !a.Expires.After(a.Issued) || a.Expires.Sub(a.Issued) > identity.MaxLifetime:
		return a, fmt.Errorf("%w: device attestation: valid from %s until %s", ErrBadRequest, a.Issued, a.Expires)
	}
	return a, nil
}

// OpenDeviceAttestation checks a signed device attestation: its form, that
// a key of trust issued it while valid (and not revoked), its signature,
// and its expiry at now.
func OpenDeviceAttestation(s *Signed, trust *identity.TrustSet, now time.Time) (DeviceAttestation, error) {
	a, err := ParseDeviceAttestation(s)
	if err != nil {
		return a, err
	}
	if err := trust.Trusts(a.Issuer, a.Issued); err != nil {
		return a, fmt.Errorf("device attestation: %w", err)
	}
	if !ed25519.Verify(a.Issuer, append([]byte(deviceAttestationDomain), s.Body...), s.Signature) {
		return a, fmt.Errorf("%w: the device attestation's signature does not verify", ErrUntrusted)
	}
	if !now.Before(a.Expires) {
		return a, fmt.Errorf("%w: device attestation expired at %s", identity.ErrExpired, a.Expires.UTC().Format(time.RFC3339))
	}
	return a, nil
}

// Open checks a served device key: the bootstrap's attestation (under
// trust, at now), the key's own signature, suite and expiry
// (audience.DeviceKey.Verify), and that the attestation names this key
// and its peer. It returns the key and the account it belongs to.
func (e DeviceKeyEntry) Open(trust *identity.TrustSet, now time.Time) (*audience.DeviceKey, DeviceAttestation, error) {
	a, err := OpenDeviceAttestation(e.Attestation, trust, now)
	if err != nil {
		return nil, a, err
	}
	k, err := audience.ParseDeviceKey(e.DeviceKey)
	if err != nil {
		return nil, a, err
	}
	if err := k.Verify(now); err != nil {
		return nil, a, err
	}
	fp := k.Fingerprint()
	if !bytes.Equal(fp[:], a.Fingerprint) || k.Peer.String() != a.Peer {
		return nil, a, fmt.Errorf("%w: the attestation is of another device key", ErrUntrusted)
	}
	return k, a, nil
}

// AccountDeviceKeys is an account and its devices' keys, as
// GET /api/v1/device-keys answers them.
type AccountDeviceKeys struct {
	Account Account          `json:"account"`
	Keys    []DeviceKeyEntry `json:"keys"`
}

// DeviceKeysResponse answers GET /api/v1/device-keys: the accounts asked
// for (by account key or handle) that exist here, each with its current
// device keys (of nodes still signed in as it).
type DeviceKeysResponse struct {
	Accounts []AccountDeviceKeys `json:"accounts"`
}

// Limits of the audience routes.
const (
	// MaxDeviceKeyLookups bounds the accounts and handles one
	// GET /api/v1/device-keys asks for.
	MaxDeviceKeyLookups = 64
	// MaxBundlesPerPut bounds the bundles of one PUT …/bundles.
	MaxBundlesPerPut = 128
	// MaxTokensPerPut bounds the tokens of one PUT …/tokens.
	MaxTokensPerPut = 128
	// MaxAudienceBody bounds the body of a roster or bundles PUT (a
	// roster may be 512 KiB, base64 in JSON).
	MaxAudienceBody = 1 << 20
)

// MutualsResponse answers GET /api/v1/audience/mutuals: the accounts that
// follow the asking account and are followed by it, who `--audience
// mutuals` invites.
type MutualsResponse struct {
	Account string    `json:"account"`
	Mutuals []Account `json:"mutuals"`
}

// RosterPut is what the broadcaster PUTs to /api/v1/broadcasts/{id}/audience:
// the broadcast's roster (audience.Roster.Marshal), whose version must be
// above the stored one's.
type RosterPut struct {
	Roster []byte `json:"roster"`
}

// RosterResponse answers a roster PUT and GET: the stored roster, as the
// broadcaster signed it.
type RosterResponse struct {
	Broadcast string `json:"broadcast"`
	Version   uint64 `json:"version"`
	Roster    []byte `json:"roster,omitempty"`
}

// BundlesPut is what the broadcaster PUTs to /api/v1/broadcasts/{id}/bundles:
// epochs' secrets wrapped for member devices (audience.Bundle.Marshal), each
// for a device of the stored roster.
type BundlesPut struct {
	Bundles [][]byte `json:"bundles"`
}

// BundlesStored answers a BundlesPut.
type BundlesStored struct {
	Stored int `json:"stored"`
}

// BundlesResponse answers a member device's GET …/bundles: the bundles for
// its device keys in the roster, oldest epoch first.
type BundlesResponse struct {
	RosterVersion uint64   `json:"roster_version"`
	Bundles       [][]byte `json:"bundles"`
}

// TokensPut is what the broadcaster PUTs to /api/v1/broadcasts/{id}/tokens:
// membership tokens (audience.Token.Marshal) it signed, each for a device
// peer of the stored roster and naming a roster version no newer than it.
type TokensPut struct {
	Tokens [][]byte `json:"tokens"`
}

// TokensStored answers a TokensPut.
type TokensStored struct {
	Stored int `json:"stored"`
}

// TokenResponse answers a member device's GET …/tokens/{peer}: its newest
// membership token, as the broadcaster signed it.
type TokenResponse struct {
	RosterVersion uint64 `json:"roster_version"`
	Token         []byte `json:"token"`
}

// Invitation is a private broadcast whose newest roster lists the asking
// account: "@bob invited you" (the listing's Who).
type Invitation struct {
	Listing       *Listing `json:"broadcast"`
	RosterVersion uint64   `json:"roster_version"`
}

// InvitationsResponse answers GET /api/v1/invitations: the private
// broadcasts, live or with a replay not yet expired, the account is
// invited to, newest first.
type InvitationsResponse struct {
	Invitations []Invitation `json:"invitations"`
}

// Group is a saved audience: a named list of account keys an account
// keeps to invite at once (`--audience group:NAME`). A PUT may name
// members by handle ("@alice"): the bootstrap stores the key of the one
// account here that shows it, and answers the group as stored.
type Group struct {
	Name    string   `json:"name"`
	Members []string `json:"members"` // account keys
}

// Limits of saved groups.
const (
	MaxGroups       = 32
	MaxGroupMembers = 512
	MaxGroupName    = 40
)

// CheckGroupName refuses a group name that is not 1 to MaxGroupName
// letters, digits, '-' or '_'.
func CheckGroupName(name string) error {
	if name == "" || len(name) > MaxGroupName {
		return fmt.Errorf("%w: a group name of 1 to %d characters", ErrBadRequest, MaxGroupName)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return fmt.Errorf("%w: group name %q: letters, digits, - and _ only", ErrBadRequest, clip(name, 80))
		}
	}
	return nil
}

// Check refuses a group that breaks a limit or names an account twice.
func (g *Group) Check() error {
	if err := CheckGroupName(g.Name); err != nil {
		return err
	}
	if len(g.Members) > MaxGroupMembers {
		return fmt.Errorf("%w: %d members, at most %d", ErrBadRequest, len(g.Members), MaxGroupMembers)
	}
	seen := make(map[string]bool, len(g.Members))
	for _, m := range g.Members {
		if err := CheckAccountKey(m); err != nil {
			return err
		}
		if seen[m] {
			return fmt.Errorf("%w: %q twice", ErrBadRequest, clip(m, 80))
		}
		seen[m] = true
	}
	return nil
}

// GroupsResponse answers GET /api/v1/groups.
type GroupsResponse struct {
	Groups []Group `json:"groups"`
}
