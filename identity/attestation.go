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
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/peerscope/peerscope/internal/pbwire"
)

// An Attestation binds a libp2p peer to an account: a community bootstrap
// checked that whoever holds the peer's key signed in as the account, and
// signed this with its own ed25519 key. Nodes believe the attestations of
// the bootstrap keys they trust; a sender without one (or with one from a
// key they do not trust, or expired) is anonymous.
//
// The wire form (protobuf, hand-written; add fields, never renumber):
//
//	message SignedAttestation { bytes body = 1; bytes signature = 2; }
//	message Attestation {
//	  string provider = 1;  // "twitter", "phone", …: [a-z0-9._-], at most 15
//	  string account = 2;   // the provider's stable account ID, at most 64
//	  string handle = 3;    // "@alice", at most 64
//	  string name = 4;      // display name, at most 128
//	  string avatar = 5;    // https URL, at most 512
//	  bytes peer = 6;       // the peer ID's bytes
//	  int64 issued = 7;     // Unix ns
//	  int64 expires = 8;    // Unix ns
//	  bytes issuer = 9;     // the bootstrap's ed25519 public key
//	}
//
// The signature is ed25519 over attestationDomain ‖ body, the body as it
// was sent, so a node that does not know a newer field still verifies it.
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
	maxPeerIDLen       = 64 // the bytes of a peer ID (ed25519 IDs are 38)
)

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
	a.body = a.marshalBody()
	a.Signature = ed25519.Sign(key, append([]byte(attestationDomain), a.body...))
	return nil
}

// Marshal returns the signed attestation's wire form; nil if it was never
// signed (or parsed).
func (a *Attestation) Marshal() []byte {
	if a.body == nil || a.Signature == nil {
		return nil
	}
	b := pbwire.AppendBytes(nil, 1, a.body)
	return pbwire.AppendBytes(b, 2, a.Signature)
}

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
// names peer p and has not expired at now. It knows nothing of key
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
	if a.Peer != p {
		return fmt.Errorf("%w: for %s, presented by %s", ErrWrongPeer, a.Peer, p)
	}
	if !now.Before(a.Expires) {
		return fmt.Errorf("%w: at %s", ErrExpired, a.Expires.UTC().Format(time.RFC3339))
	}
	return nil
}

func (a *Attestation) marshalBody() []byte {
	var b []byte
	b = pbwire.AppendString(b, 1, a.Provider)
	b = pbwire.AppendString(b, 2, a.Account)
	b = pbwire.AppendString(b, 3, a.Handle)
	b = pbwire.AppendString(b, 4, a.Name)
	b = pbwire.AppendString(b, 5, a.Avatar)
	b = pbwire.AppendBytes(b, 6, []byte(a.Peer))
	b = pbwire.AppendVarint(b, 7, uint64(pbwire.UnixNano(a.Issued)))
	b = pbwire.AppendVarint(b, 8, uint64(pbwire.UnixNano(a.Expires)))
	b = pbwire.AppendBytes(b, 9, a.Issuer)
	return b
}

func (a *Attestation) unmarshal(b []byte) error {
	*a = Attestation{}
	if len(b) > MaxAttestationSize {
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, len(b))
	}
	err := pbwire.EachField(b, func(num protowire.Number, typ protowire.Type, _ uint64, raw []byte) error {
		if err := pbwire.CheckWireType(num, typ, 2, 1, 2); err != nil {
			return err
		}
		switch num {
		case 1:
			a.body = raw
		case 2:
			if len(raw) != ed25519.SignatureSize {
				return fmt.Errorf("signature of %d bytes", len(raw))
			}
			a.Signature = raw
		}
		return nil
	})
	if err != nil {
		return err
	}
	if a.body == nil || a.Signature == nil {
		return fmt.Errorf("unsigned")
	}
	err = pbwire.EachField(a.body, func(num protowire.Number, typ protowire.Type, v uint64, raw []byte) error {
		if err := pbwire.CheckWireType(num, typ, 9, 1, 2, 3, 4, 5, 6, 9); err != nil {
			return err
		}
		switch num {
		case 1:
			a.Provider = string(raw)
		case 2:
			a.Account = string(raw)
		case 3:
			a.Handle = string(raw)
		case 4:
			a.Name = string(raw)
		case 5:
			a.Avatar = string(raw)
		case 6:
			id, err := decodePeer(raw)
			if err != nil {
				return err
			}
			a.Peer = id
		case 7:
			a.Issued = pbwire.FromUnixNano(int64(v))
		case 8:
			a.Expires = pbwire.FromUnixNano(int64(v))
		case 9:
			a.Issuer = ed25519.PublicKey(raw)
		}
		return nil
	})
	if err != nil {
		return err
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

func decodePeer(b []byte) (peer.ID, error) {
	if len(b) == 0 || len(b) > maxPeerIDLen {
		return "", fmt.Errorf("peer ID of %d bytes", len(b))
	}
	id, err := peer.IDFromBytes(b)
	if err != nil {
		return "", fmt.Errorf("peer ID: %w", err)
	}
	return id, nil
}
