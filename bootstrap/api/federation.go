package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Federation: bootstraps of different communities read each other's
// public live directory. A bootstrap exports, at FederationPath, each
// public live listing as its broadcaster signed it — the signed request
// that made the listing, as received — and nothing it only vouches for
// itself. A bootstrap that federates with it checks every entry with
// SignedListing.Verify against the exporter's fingerprint: the broadcaster
// (whose key the broadcast ID names) signed this very body for that
// bootstrap, the body is a valid listing, and it is public. So a hostile
// community can withhold or delay entries, but cannot invent, alter or
// unhide one.

// FederationVersion is the version of the export this package writes and
// reads: a reader refuses an export of another version whole
// (ErrFederation) rather than guess at it.
const FederationVersion = 1

// FederationPath is where a bootstrap exports its public live directory.
const FederationPath = "/api/v1/federation/broadcasts"

// ErrFederation is returned for a federated export or entry that is
// malformed, forged, private or from another version.
var ErrFederation = errors.New("bootstrap: federated entry refused")

// FederationExport is the answer at FederationPath.
type FederationExport struct {
	// Version is FederationVersion.
	Version int `json:"federation"`
	// Bootstrap is the exporter's fingerprint (Info.ID): what its
	// broadcasters' requests are signed for.
	Bootstrap  string          `json:"bootstrap"`
	Broadcasts []SignedListing `json:"broadcasts"`
}

// SignedListing is a ListingUpdate as its broadcaster's node signed it
// (SignRequest): the request's path, signer, time, nonce and signature,
// and the body. The method is always PUT.
type SignedListing struct {
	Path      string `json:"path"` // /api/v1/broadcasts/<ID>
	Peer      string `json:"peer"`
	Time      string `json:"time"` // Unix ms, as signed
	Nonce     string `json:"nonce"`
	Signature string `json:"signature"` // base64url, unpadded
	Body      []byte `json:"body"`      // the ListingUpdate's JSON, as signed
}

// Limits of what a federated entry may hold.
const (
	// MaxFederatedBody bounds a signed listing's body (a bootstrap takes
	// bodies of up to 16 KiB by default).
	MaxFederatedBody = 16 << 10
	listingPrefix    = "/api/v1/broadcasts/"
)

// VerifiedListing is a federated entry that verified.
type VerifiedListing struct {
	ID          string
	Broadcaster peer.ID
	Update      ListingUpdate
	// Signed is when the broadcaster signed it (its node's clock): what
	// says whether it is still live.
	Signed time.Time
}

// DecodeFederationExport reads an export, at most max bytes of it, and
// refuses one of another version or without a valid fingerprint. The
// entries are not verified: Verify each.
func DecodeFederationExport(r io.Reader, max int64) (FederationExport, error) {
	var x FederationExport
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return x, fmt.Errorf("%w: reading the export: %w", ErrFederation, err)
	}
	if int64(len(b)) > max {
		return x, fmt.Errorf("%w: the export is over %d bytes", ErrFederation, max)
	}
	// Only the version first: a later version may change the rest.
	var v struct {
		Version int `json:"federation"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return x, fmt.Errorf("%w: JSON: %w", ErrFederation, err)
	}
	if v.Version != FederationVersion {
		return x, fmt.Errorf("%w: federation version %d; this bootstrap reads %d", ErrFederation, v.Version, FederationVersion)
	}
	if err := json.Unmarshal(b, &x); err != nil {
		return x, fmt.Errorf("%w: JSON: %w", ErrFederation, err)
	}
	if !ValidFingerprint(x.Bootstrap) {
		return x, fmt.Errorf("%w: %q is not a bootstrap's fingerprint", ErrFederation, clip(x.Bootstrap, 40))
	}
	return x, nil
}

// Verify checks that the entry's broadcaster signed it for the bootstrap
// whose fingerprint is bootstrap, that its body is a valid listing of the
// broadcast its path names (ListingUpdate.Check, at now give or take
// skew), signed no later than skew after now, and public. Whoever passes
// the entry on — the exporting bootstrap included — can change none of it
// unseen.
func (s *SignedListing) Verify(bootstrap string, now time.Time, skew time.Duration) (VerifiedListing, error) {
	var v VerifiedListing
	fail := func(format string, a ...any) (VerifiedListing, error) {
		return VerifiedListing{}, fmt.Errorf("%w: %s", ErrFederation, fmt.Sprintf(format, a...))
	}
	id, ok := strings.CutPrefix(s.Path, listingPrefix)
	if !ok || len(s.Path) > len(listingPrefix)+maxIDLen {
		return fail("path %q is not %s<ID>", clip(s.Path, 80), listingPrefix)
	}
	owner, err := BroadcasterOf(id)
	if err != nil {
		return fail("%v", err)
	}
	if s.Peer != owner.String() {
		return fail("signed by %s, not by the broadcaster %s", clip(s.Peer, 60), owner)
	}
	pub, err := owner.ExtractPublicKey()
	if err != nil {
		return fail("the broadcaster's peer ID holds no public key")
	}
	ms, err := strconv.ParseInt(s.Time, 10, 64)
	if err != nil || ms <= 0 || strconv.FormatInt(ms, 10) != s.Time {
		return fail("time %q", clip(s.Time, 30))
	}
	if len(s.Nonce) < 16 || len(s.Nonce) > 64 {
		return fail("nonce of %d characters", len(s.Nonce))
	}
	if len(s.Body) > MaxFederatedBody {
		return fail("body of %d bytes, over %d", len(s.Body), MaxFederatedBody)
	}
	sig, err := base64.RawURLEncoding.DecodeString(s.Signature)
	if err != nil || len(sig) > 512 {
		return fail("signature encoding")
	}
	if ok, err := pub.Verify(RequestPayload(bootstrap, "PUT", s.Path, s.Time, s.Nonce, s.Body), sig); err != nil || !ok {
		return fail("broadcast %s: the broadcaster's signature does not verify for bootstrap %s", clip(id, 80), bootstrap)
	}
	dec := json.NewDecoder(bytes.NewReader(s.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v.Update); err != nil {
		return fail("broadcast %s: body: %v", clip(id, 80), err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fail("broadcast %s: body: data after the object", clip(id, 80))
	}
	v.Signed = time.UnixMilli(ms)
	if v.Signed.After(now.Add(skew)) {
		return fail("broadcast %s: signed at %s, in the future", clip(id, 80), v.Signed.UTC().Format(time.RFC3339))
	}
	if err := v.Update.Check(id, now, skew); err != nil {
		return fail("broadcast %s: %v", clip(id, 80), err)
	}
	if v.Update.Private {
		return fail("broadcast %s is private", clip(id, 80))
	}
	v.ID, v.Broadcaster = id, owner
	return v, nil
}

// Origin says which community a federated listing comes from.
type Origin struct {
	// URL is the community's bootstrap, as this bootstrap federates with
	// it; Name, its host, for a page to show ("from boot.example").
	URL  string `json:"url"`
	Name string `json:"name"`
	// Bootstrap is its fingerprint: what the broadcaster signed for.
	Bootstrap string `json:"bootstrap"`
}

// FederatedProof answers GET /api/v1/federated/{id}: a federated
// listing's origin and its signed announcement, which anyone can check
// with Signed.Verify(Origin.Bootstrap, …).
type FederatedProof struct {
	Origin Origin        `json:"origin"`
	Signed SignedListing `json:"signed"`
}
