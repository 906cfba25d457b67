// Package xstandin is a local stand-in for X's (Twitter's) OAuth 2.0 and
// API v2, for tests and for local setups where the real one cannot be
// reached. It speaks the protocol for real, the parts a bootstrap uses:
//
//   - GET  /i/oauth2/authorize: checks client_id, the registered
//     redirect_uri, response_type=code, a state and an S256 code
//     challenge, then (the user "consents" at once, as the user the
//     request's login parameter or the default names) redirects to the
//     redirect URI with a one-time code and the state.
//   - POST /2/oauth2/token: grant_type=authorization_code (or
//     refresh_token: single use, answered with a new pair); checks the
//     client (HTTP Basic for a confidential client, client_id for a public
//     one), the code (single use, 30 s), the redirect URI, and that
//     BASE64URL(SHA256(code_verifier)) equals the challenge; answers a
//     bearer token with the granted scopes (and a refresh token with
//     offline.access). Refusals are RFC 6749 JSON errors with status 400
//     or 401.
//   - GET  /2/users/me, GET /2/users/{id}/following (paginated),
//     POST /2/tweets: bearer-authenticated, scope-checked, in API v2's
//     JSON shapes.
//
// Its state is in memory; its clock is injectable.
package xstandin
