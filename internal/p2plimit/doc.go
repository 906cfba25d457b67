// Package p2plimit puts Peerscope's own libp2p protocols under libp2p's
// resource manager: a service per protocol family, with a cap on the
// inbound streams each peer may hold open on it and on the memory its
// frames may take, beside libp2p's own limits.
//
// A protocol ID names one broadcast (the tree speaks
// /peerscope/mesh/1.2.0/<broadcast ID>), so limits per protocol ID would
// let a peer open as many streams as there are broadcasts; a service
// gathers every broadcast's streams of one kind:
//
//	inbound stream ─► handler ─► Accept(s, ServiceX): the stream joins the
//	    service's scope (per peer, and in all); over a limit ─► reset
//	a frame's length read ─► Reserve(s, n) (frames past pbwire.EagerFrame):
//	    the bytes are charged to the stream's scope (and so to the service,
//	    the peer and the system) while the frame is read and decoded;
//	    refused ─► the stream is reset
//
// ResourceManager is libp2p's default manager (its scaled default limits
// and its services') with these services added; the node builds its host
// with it. A host without it (a test's, the bench's) accepts every stream:
// Accept and Reserve then only cost a call.
package p2plimit
