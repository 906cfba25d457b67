// Package owner is the one way Peerscope's stateful components are driven:
// one goroutine owns the state, and every other goroutine hands it a closure
// and waits (Call), so the state needs no lock and its machine stays pure.
//
// How a call flows:
//
//	other goroutine: Inbox.Call(ctx, f) ─► the inbox (bounded, New's size)
//	owner goroutine: select on Calls() (beside its other inputs) ─► f() ─► Call returns
//
// Call gives up with ctx's error if the owner has not taken f by then, and
// with the closed error New was given once done is closed. mesh/p2p's Tree,
// chat's Room and node's Broadcast are driven this way.
package owner
