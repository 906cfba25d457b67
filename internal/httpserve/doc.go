// Package httpserve bounds what one HTTP client can cost a Peerscope
// server: every phase of a request has a deadline, bodies are small and read
// whole before the handler runs, and long-lived streams are capped per
// client. The node's HTTP and HTTPS servers are built with it (New); any
// other server of ours can be.
//
//	accept ─► headers within ReadHeaderTimeout (and MaxHeaderBytes)
//	       ─► Limit: the body, whole, within BodyTimeout and MaxBodyBytes
//	          (else 408 or 413, before the handler runs)
//	       ─► the handler; each write (and flush) must complete within
//	          WriteTimeout of its start: a rolling deadline, so a stream
//	          that keeps moving lives on and a stalled reader is cut
//	       ─► idle keep-alive connections closed after IdleTimeout
//
// A rolling write deadline rather than http.Server.WriteTimeout, which
// bounds the whole response: event streams, blocking playlist reloads and
// large replay segments would be cut by any fixed total. Bodies are read
// up front rather than given a ReadTimeout, which net/http also applies to
// the connection's background read once the body is in, cancelling the
// request's context of a handler that runs longer (a join takes up to
// 30 s).
//
// PerClient counts what a client holds at once (event streams, say): a
// client is its IP address, or its /64 for IPv6 (one host gets a /64).
package httpserve
