package audience

import (
	"crypto/hpke"
	"fmt"
)

// Suite names an HPKE ciphersuite (RFC 9180) by its registry identifiers.
// A device key names its suite, so the suite can change (a bigger KEM, a
// new AEAD) with old and new keys side by side.
type Suite struct {
	KEM, KDF, AEAD uint16
}

// XWing is the suite of every device key made today: the hybrid
// ML-KEM-768 + X25519 KEM (X-Wing, draft-ietf-hpke-pq), HKDF-SHA256 and
// AES-256-GCM, all from crypto/hpke. The hybrid keeps a bundle recorded
// today safe against a quantum computer later, and against a flaw in
// ML-KEM now.
var XWing = Suite{KEM: 0x647a, KDF: 0x0001, AEAD: 0x0002}

// String names the suite as in the HPKE registry.
func (s Suite) String() string {
	if s == XWing {
		return "MLKEM768-X25519/HKDF-SHA256/AES-256-GCM"
	}
	return fmt.Sprintf("HPKE(kem %#04x, kdf %#04x, aead %#04x)", s.KEM, s.KDF, s.AEAD)
}

// hpkeSuite is a suite's crypto/hpke parts.
type hpkeSuite struct {
	kem  hpke.KEM
	kdf  hpke.KDF
	aead hpke.AEAD
}

// instantiate returns the parts of a supported suite: only XWing for now
// (crypto/hpke knows more; each added suite is a decision, not a default).
func (s Suite) instantiate() (hpkeSuite, error) {
	if s != XWing {
		return hpkeSuite{}, fmt.Errorf("%w: %v", ErrUnsupportedSuite, s)
	}
	return hpkeSuite{kem: hpke.MLKEM768X25519(), kdf: hpke.HKDFSHA256(), aead: hpke.AES256GCM()}, nil
}
