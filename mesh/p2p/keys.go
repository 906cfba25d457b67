package p2p

import (
	"crypto/ed25519"
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/chunk"
	"github.com/peerscope/peerscope/mesh"
)

// MeshID returns the mesh name of a libp2p peer: its base58 text form.
func MeshID(id peer.ID) mesh.PeerID { return mesh.PeerID(id.String()) }

// PeerID parses a mesh name back into a libp2p peer ID.
func PeerID(id mesh.PeerID) (peer.ID, error) { return peer.Decode(string(id)) }

// Info returns the host as a mesh peer: its ID (MeshID) and its listen
// addresses as the host advertises them (h.Addrs(): unspecified addresses
// expanded to the interfaces'), as multiaddr strings without /p2p.
func Info(h host.Host) mesh.PeerInfo {
	addrs := h.Addrs()
	info := mesh.PeerInfo{ID: MeshID(h.ID()), Addrs: make([]string, 0, len(addrs))}
	for _, a := range addrs {
		info.Addrs = append(info.Addrs, a.String())
	}
	return info
}

// PublicKey returns the ed25519 public key embedded in a peer ID (libp2p
// inlines ed25519 keys into the ID), so a viewer knows the broadcaster's
// key from its ID alone.
func PublicKey(id mesh.PeerID) (ed25519.PublicKey, error) {
	pid, err := PeerID(id)
	if err != nil {
		return nil, fmt.Errorf("p2p: peer ID %q: %w", id, err)
	}
	pub, err := pid.ExtractPublicKey()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrNotEd25519, id, err)
	}
	if pub.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("%w: %s", ErrNotEd25519, id)
	}
	raw, err := pub.Raw()
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: %s", ErrNotEd25519, id)
	}
	return ed25519.PublicKey(raw), nil
}

// HostSigner returns a chunk signer for the host's own key: the key the
// host's peer ID inlines, so a broadcast ID naming it is all a viewer needs.
func HostSigner(h host.Host) (*chunk.Signer, error) {
	return chunk.NewSigner(h.Peerstore().PrivKey(h.ID()))
}
