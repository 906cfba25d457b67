package api

import (
	"crypto/ed25519"
	"time"

	"github.com/peerscope/peerscope/identity"
)

// The JSON bodies of the API, both ways. Paths are under /api/v1/; a
// request body is strict JSON (unknown fields and trailing data are
// refused), an error is an ErrorBody.

// Info is GET /api/v1/info: what a node needs to trust this bootstrap and
// to reach it.
type Info struct {
	// Keys are the attestation keys, current first (identity.KeySet), as
	// nodes before version 2 read them. A Client replaces them with the
	// keys of Trust, once it has checked its signature.
	Keys identity.KeySet `json:"keys"`
	// ID is the bootstrap's fingerprint (Fingerprint of IdentityKey): the
	// bootstrap signed requests name, the pin a node may be given.
	ID          string            `json:"id,omitempty"`
	IdentityKey ed25519.PublicKey `json:"identity_key,omitempty"`
	// Trust is the TrustStatement (keys and revocations) signed by the
	// identity key, as GET /api/v1/trust answers it.
	Trust *Signed `json:"trust,omitempty"`
	// RequestVersion is the version of signed requests the bootstrap
	// takes (RequestVersion).
	RequestVersion int `json:"request_version,omitempty"`

	PeerID  string    `json:"peer_id,omitempty"`
	Addrs   []string  `json:"addrs,omitempty"`
	Twitter bool      `json:"twitter"`
	Phone   bool      `json:"phone"`
	Time    time.Time `json:"time"`
}

// Account is someone who signed in, with a provider.
type Account struct {
	Provider string `json:"provider"`
	Subject  string `json:"account"`
	Handle   string `json:"handle,omitempty"`
	Name     string `json:"name,omitempty"`
	Avatar   string `json:"avatar,omitempty"`
}

// Key is the account's key, "provider:subject", as follow lists name it.
func (a Account) Key() string { return a.Provider + ":" + a.Subject }

// AttestationResponse answers a sign-in and GET /api/v1/attestation.
type AttestationResponse struct {
	Attestation []byte `json:"attestation"` // identity.Attestation.Marshal
	// ID names the attestation (identity.Attestation.ID): what an
	// operator revokes it by (--revoke-attestation).
	ID      string    `json:"id,omitempty"`
	Account Account   `json:"account"`
	Peer    string    `json:"peer"`
	Expires time.Time `json:"expires"`
}

// VerifyRequest asks (POST /api/v1/attestation/verify) whether an
// attestation is valid for a peer.
type VerifyRequest struct {
	Attestation []byte `json:"attestation"`
	Peer        string `json:"peer"`
}

// VerifyResponse is the verdict under the bootstrap's keys.
type VerifyResponse struct {
	Valid    bool               `json:"valid"`
	Reason   string             `json:"reason,omitempty"`
	Identity *identity.Identity `json:"identity,omitempty"`
}

// Scopes a sign-in with Twitter may ask for beyond the profile.
const (
	ScopeFollows = "follows" // import who the account follows (follows.read)
	ScopeTweet   = "tweet"   // post the link when going live (tweet.write)
)

// TwitterStart asks (POST /api/v1/auth/twitter/start, signed) to sign in
// with Twitter; Scopes may hold ScopeFollows and ScopeTweet. Nothing is
// signed for the node until it redeems the sign-in (TwitterFinish) with
// the one-time code the browser that finished it at X was given: sent back
// to Return (the node's own page, on loopback: only a browser on the
// node's machine gets there) or shown to be typed in.
type TwitterStart struct {
	Scopes []string `json:"scopes,omitempty"`
	// Return is where the browser goes back with the code, in the URL's
	// fragment (#signin=CODE): an http(s) URL on a loopback address.
	// Empty: the bootstrap's page shows the code.
	Return string `json:"return,omitempty"`
}

// TwitterFinish redeems a sign-in (POST /api/v1/auth/twitter/finish,
// signed by the node that started it) with its one-time code; the answer
// is an AttestationResponse.
type TwitterFinish struct {
	Code string `json:"code"`
}

// SignInCode is what the callback answers a browser that asks for JSON:
// the one-time code and the node it is for.
type SignInCode struct {
	Code    string    `json:"code"`
	Peer    string    `json:"peer"`
	Expires time.Time `json:"expires"`
}

// SignOut ends this node's session and revokes its attestations
// (POST /api/v1/auth/signout, signed); Everywhere does it for every node
// of the account.
type SignOut struct {
	Everywhere bool `json:"everywhere,omitempty"`
}

// Session is a node signed in as the account (GET /api/v1/sessions).
type Session struct {
	Peer    string    `json:"peer"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	// Current is the node that asked.
	Current bool `json:"current,omitempty"`
}

// SessionsResponse lists the account's sessions.
type SessionsResponse struct {
	Account  string    `json:"account"`
	Sessions []Session `json:"sessions"`
}

// RevokeSession ends another node's session of the same account and
// revokes its attestations (POST /api/v1/sessions/revoke, signed).
type RevokeSession struct {
	Peer string `json:"peer"`
}

// TwitterStartResponse says where to send the browser.
type TwitterStartResponse struct {
	AuthorizeURL string    `json:"authorize_url"`
	Expires      time.Time `json:"expires"`
}

// PhoneStart asks (POST /api/v1/auth/phone/start, signed) for a code to be
// sent to Phone (E.164, "+15550100").
type PhoneStart struct {
	Phone string `json:"phone"`
}

// PhoneVerify proves the code (POST /api/v1/auth/phone/verify, signed);
// the answer is an AttestationResponse.
type PhoneVerify struct {
	Phone string `json:"phone"`
	Code  string `json:"code"`
}

// FollowsResponse lists the account keys an account follows
// (GET /api/v1/follows).
type FollowsResponse struct {
	Account   string   `json:"account"`
	Following []string `json:"following"`
}

// Suggestion is someone an account may want to follow (imported from who
// it follows on its provider).
type Suggestion struct {
	Account string `json:"account"` // account key
	Handle  string `json:"handle,omitempty"`
	Name    string `json:"name,omitempty"`
	Avatar  string `json:"avatar,omitempty"`
	// Here reports whether the account has signed in at this bootstrap.
	Here bool `json:"here"`
}

// SuggestionsResponse answers GET /api/v1/suggestions and
// POST /api/v1/follows/import.
type SuggestionsResponse struct {
	Suggestions []Suggestion `json:"suggestions"`
}
