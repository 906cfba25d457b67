// Package localapi decides who may drive a node's local web server: the
// pages it serves its owner, and nobody else in the owner's name.
//
// A node's HTTP server answers the player, chat, directory and go-live
// pages, and what they call acts as the node: a comment is signed with the
// node's key and carries its attestation, a join dials out, a sign-in binds
// an account to the node. A web page of any other site that the owner
// visits can send requests to http://127.0.0.1:8080 (a form, a text/plain
// fetch, a beacon: no CORS preflight for those, and the browser does the
// work even though the page cannot read the answer); a page whose name an
// attacker re-points at 127.0.0.1 (DNS rebinding) is even same-origin with
// the node. A Guard stands between them and the handlers:
//
//	every request ─► Handler: its Host is one of the node's own (localhost,
//	                 a loopback address, the address it came in on, or a
//	                 configured name), else 403 — no rebinding; an Origin,
//	                 if sent, is the node's own (no "null"), else 403 — no
//	                 other site, and no CORS preflight is granted; and every
//	                 answer carries the default security headers (a strict
//	                 Content-Security-Policy that pages replace with their
//	                 own, frame-ancestors and X-Frame-Options, nosniff, no
//	                 referrer)
//	what acts    ─► OwnerWrites / Owner: JSON only, with Content-Type
//	as the node     application/json (415 before any work: a form or a
//	                text/plain body is what a cross-site page can send),
//	                from this machine, with the page token in the
//	                Peerscope-Token header (403) — a header browsers never
//	                add on their own and that forces a preflight
//	pages        ─► PageToken: the token a page served to this machine
//	                carries in <meta name="peerscope-token">, which its
//	                scripts send; a page served to another machine carries
//	                none, so its chat is read-only
//
// Routes that carry their own credential (WHIP's bearer stream key) are
// Config.Open: any origin and name may reach them. Secrets are compared
// with Equal, in constant time.
package localapi
