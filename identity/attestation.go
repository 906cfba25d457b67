package identity

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/peerscope/peerscope/internal/pbwire"
	"github.com/peerscope/peerscope/proto/identitypb"
)

// An Attestation binds a libp2p peer to an account: a community bootstrap
// checked that whoever holds the peer's key signed in as the account, and
// signed this with its own ed25519 key. Nodes believe the attestations of
// the bootstrap keys they trust; a sender without one (or with one from a
// key they do not trust, or expired) is anonymous.
//
// The wire form is proto/identity.proto's SignedAttestation, encoded and
// decoded by the generated code (proto/identitypb). The signature is
// ed25519 over attestationDomain ‖ body, the body as it was sent: a parsed
// attestation keeps the body's bytes and never re-encodes them, so a node
// that does not know a newer field still verifies it.
type Attestation struct {
	Provider string
	Account  string
	Handle   string
	Name     string
	Avatar   string
	Peer     peer.ID
	Issued   time.Time
	Expires  time.Time
	// Issuer is the public key of the bootstrap that signed (set by Sign).
	Issuer    ed25519.PublicKey
	Signature []byte

	body []byte // the signed bytes, as signed or as received
}

// attestationDomain separates attestation signatures from every other use
// of a bootstrap's key.
const attestationDomain = "peerscope/attestation/1\x00"

// Limits of an attestation's fields and of its wire form.
const (
	MaxAttestationSize = 2 << 10
	MaxProviderLen     = 15
	MaxAccountLen      = 64
	MaxHandleLen       = 64
	MaxNameLen         = 128
	MaxAvatarLen       = 512
	// MaxPeerIDLen bounds the bytes of a peer ID in a message (ed25519 IDs
	// are 38).
	MaxPeerIDLen = 64
)

// MaxLifetime is the longest an attestation may live, from its issue to
// its expiry: a verifier refuses (ErrLifetime) one that claims more. It
// bounds what a key can still mint once retired: whoever got hold of a
// retired key can date an attestation inside the key's window, but it
// expires at most MaxLifetime after the retirement. Bootstraps issue
// attestations of at most this long (30 days by default).
const MaxLifetime = 30 * 24 * time.Hour

// Identity is what an attestation says about its holder, as the UI shows
// it.
type Identity struct {
	Provider string
	Account  string
	Handle   string
	Name     string
	Avatar   string
}

// AccountKey is "provider:account", the form follow lists use.
func (i Identity) AccountKey() string { return i.Provider + ":" + i.Account }

// Identity returns the identity the attestation asserts.
func (a *Attestation) Identity() Identity {
	return Identity{Provider: a.Provider, Account: a.Account, Handle: a.Handle, Name: a.Name, Avatar: a.Avatar}
}

// Sign signs the attestation with a bootstrap's key, setting Issuer and
// Signature. It refuses fields outside the limits.
func (a *Attestation) Sign(key ed25519.PrivateKey) error {
	if len(key) != ed25519.PrivateKeySize {
		return fmt.Errorf("%w: %d bytes", ErrBadKey, len(key))
	}
	a.Issuer = key.Public().(ed25519.PublicKey)
	if err := a.check(); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	body, err := a.marshalBody()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	a.body = body
	a.Signature = ed25519.Sign(key, append([]byte(attestationDomain), a.body...))
	return nil
}

// Marshal returns the signed attestation's wire form; nil if it was never
// signed (or parsed).
func (a *Attestation) Marshal() []byte {
	if a.body == nil || a.Signature == nil {
		return nil
	}
	b, err := deterministic.Marshal(&identitypb.SignedAttestation{Body: a.body, Signature: a.Signature})
	if err != nil {
		return nil // two byte fields: nothing to fail on
	}
	return b
}

// deterministic writes fields in number order, proto3 defaults left out:
// the same bytes for the same attestation, as the hand-written codec this
// replaced wrote them.
var deterministic = proto.MarshalOptions{Deterministic: true}

// ParseAttestation decodes a signed attestation and checks its fields (not
// its signature: see Verify and TrustSet.Verify).
func ParseAttestation(b []byte) (*Attestation, error) {
	a := new(Attestation)
	if err := a.unmarshal(b); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return a, nil
}

// VerifySignature checks the signature under the issuer key the
// attestation names, whoever that is: a forged attestation fails here for
// every receiver alike, whatever keys it trusts.
func (a *Attestation) VerifySignature() error {
	if a.body == nil || len(a.Issuer) != ed25519.PublicKeySize ||
		!ed25519.Verify(a.Issuer, append([]byte(attestationDomain), a.body...), a.Signature) {
		return ErrBadSignature
	}
	return nil
}

// Verify checks that the attestation is signed by one of the trusted keys,
// names peer p, lives at most MaxLifetime and has not expired at now. It knows nothing of key
// rotation: TrustSet.Verify also checks when the key was valid.
func (a *Attestation) Verify(trusted []ed25519.PublicKey, p peer.ID, now time.Time) error {
	known := false
	for _, k := range trusted {
		if bytes.Equal(k, a.Issuer) {
			known = true
			break
		}
	}
	if !known {
		return ErrUntrusted
	}
	return a.verifyRest(p, now)
}

func (a *Attestation) verifyRest(p peer.ID, now time.Time) error {
	if err := a.VerifySignature(); err != nil {
		return err
	}
	if a.Expires.Sub(a.Issued) > MaxLifetime {
		return fmt.Errorf("%w: issued %s, expires %s", ErrLifetime, a.Issued.UTC().Format(time.RFC3339), a.Expires.UTC().Format(time.RFC3339))
	}
	if a.Peer != p {
		return fmt.Errorf("%w: for %s, presented by %s", ErrWrongPeer, a.Peer, p)
	}
	if !now.Before(a.Expires) {
		return fmt.Errorf("%w: at %s", ErrExpired, a.Expires.UTC().Format(time.RFC3339))
	}
	return nil
}

func (a *Attestation) marshalBody() ([]byte, error) {
	return deterministic.Marshal(&identitypb.Attestation{
		Provider: a.Provider, Account: a.Account, Handle: a.Handle, Name: a.Name, Avatar: a.Avatar,
		Peer: []byte(a.Peer), Issued: pbwire.UnixNano(a.Issued), Expires: pbwire.UnixNano(a.Expires), Issuer: a.Issuer,
	})
}

// unmarshal decodes a SignedAttestation, then its body (kept as received),
// refusing a known field with the wrong wire type (pbwire.CheckKnownFields)
// and, through the generated code, invalid UTF-8 in the text fields; then
// the field limits (check).
func (a *Attestation) unmarshal(b []byte) error {
	*a = Attestation{}
	if len(b) > MaxAttestationSize {
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, len(b))
	}
	var s identitypb.SignedAttestation
	if err := proto.Unmarshal(b, &s); err != nil {
		return err
	}
	if err := pbwire.CheckKnownFields(&s); err != nil {
		return err
	}
	if len(s.Body) == 0 || len(s.Signature) == 0 {
		return fmt.Errorf("unsigned")
	}
	if len(s.Signature) != ed25519.SignatureSize {
		return fmt.Errorf("signature of %d bytes", len(s.Signature))
	}
	var body identitypb.Attestation
	if err := proto.Unmarshal(s.Body, &body); err != nil {
		return err
	}
	if err := pbwire.CheckKnownFields(&body); err != nil {
		return err
	}
	*a = Attestation{
		Provider: body.Provider, Account: body.Account, Handle: body.Handle, Name: body.Name, Avatar: body.Avatar,
		Issued: pbwire.FromUnixNano(body.Issued), Expires: pbwire.FromUnixNano(body.Expires), Issuer: ed25519.PublicKey(body.Issuer),
		Signature: s.Signature, body: s.Body,
	}
	if len(body.Peer) > 0 {
		id, err := DecodePeer(body.Peer)
		if err != nil {
			return err
		}
		a.Peer = id
	}
	return a.check()
}

// check enforces the field limits.
func (a *Attestation) check() error {
	switch {
	case !ValidProvider(a.Provider):
		return fmt.Errorf("bad provider %q", a.Provider)
	case a.Account == "" || len(a.Account) > MaxAccountLen || !ValidText(a.Account):
		return fmt.Errorf("bad account")
	case len(a.Handle) > MaxHandleLen || !ValidText(a.Handle):
		return fmt.Errorf("bad handle")
	case len(a.Name) > MaxNameLen || !ValidText(a.Name):
		return fmt.Errorf("bad name")
	case len(a.Avatar) > MaxAvatarLen || !ValidText(a.Avatar) ||
		(a.Avatar != "" && !strings.HasPrefix(a.Avatar, "https://")):
		return fmt.Errorf("bad avatar URL")
	case a.Peer == "":
		return fmt.Errorf("no peer")
	case a.Expires.IsZero() || !a.Expires.After(a.Issued):
		return fmt.Errorf("expires %v is not after issued %v", a.Expires, a.Issued)
	case len(a.Issuer) != ed25519.PublicKeySize:
		return fmt.Errorf("issuer key of %d bytes", len(a.Issuer))
	}
	return nil
}

// ValidProvider reports whether s can name a provider: 1 to 15 of
// [a-z0-9._-].
func ValidProvider(s string) bool {
	return s != "" && len(s) <= MaxProviderLen && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
	}) < 0
}

// ValidText reports whether s is UTF-8 on one line without control
// characters, line separators or bidi overrides: what a handle or a name
// may hold.
func ValidText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == utf8.RuneError || (r >= 0x2028 && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069) {
			return false
		}
	}
	return true
}

// DecodePeer reads a peer ID sent as its bytes (an attestation's holder,
// the peers a chat message names): at most MaxPeerIDLen of them, and a
// valid multihash.
func DecodePeer(b []byte) (peer.ID, error) {
	if len(b) == 0 || len(b) > MaxPeerIDLen {
		return "", fmt.Errorf("peer ID of %d bytes", len(b))
	}
	id, err := peer.IDFromBytes(b)
	if err != nil {
		return "", fmt.Errorf("peer ID: %w", err)
	}
	return id, nil
}
