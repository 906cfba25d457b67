package link_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/peerscope/peerscope/link"
)

// Peer IDs for the cases: two ed25519 identities, and an RSA one (its ID
// is a hash, so no key can be read from it).
const (
	idA   = "12D3KooWSqMPsc2ALq8TV32fTZiXVYpdZ6TgS7jT5kYigcCrtG7B"
	idB   = "12D3KooWRzWXVRrtzkAx1ZEorK6K7YoRN1vR6ta4xMsZ1RB6d5g1"
	idRSA = "QmRBKSpr96TTw89BL6CAMohYtt1jVB5xzdUsnJfRLwV7sw"
	idK1  = "16Uiu2HAmQFWoFhfPAJzUEprGrj2brWr6b4L4fXu5ZTJpEqcrQYQJ" // secp256k1: inlined, not ed25519
)

var linkCases = []struct {
	name string
	link string
	err  string // in the error; "" when the link is good
	// for good links: the broadcast and the peers with their address counts
	broadcast string
	peers     map[string]int
}{
	{
		name:      "one peer",
		link:      "peerscope://" + idA + ".abcdefgh?peer=/ip4/127.0.0.1/tcp/4001/p2p/" + idA,
		broadcast: idA + ".abcdefgh",
		peers:     map[string]int{idA: 1},
	},
	{
		name:      "a peer with two addresses and a relay",
		link:      "peerscope://" + idA + ".k2?peer=/ip4/192.168.1.5/tcp/4001/p2p/" + idA + "&peer=/ip4/192.168.1.5/udp/4001/quic-v1/p2p/" + idA + "&peer=/ip6/::1/tcp/9/p2p/" + idB,
		broadcast: idA + ".k2",
		peers:     map[string]int{idA: 2, idB: 1},
	},
	{
		name:      "escaped, with a slash, a fragment, an unknown parameter and a repeated address",
		link:      "  peerscope://" + idA + ".zz9/?v=2&peer=%2Fdns4%2Fexample.org%2Ftcp%2F443%2Fp2p%2F" + idB + "&peer=/dns4/example.org/tcp/443/p2p/" + idB + "#x",
		broadcast: idA + ".zz9",
		peers:     map[string]int{idB: 1},
	},
	{name: "empty", link: "", err: "does not start with peerscope://"},
	{name: "http", link: "http://127.0.0.1:8080/b/x/", err: "does not start with peerscope://"},
	{name: "no ID", link: "peerscope://?peer=/ip4/1.2.3.4/tcp/1/p2p/" + idA, err: "no broadcast ID"},
	{name: "no nonce", link: "peerscope://" + idA + "?peer=/ip4/1.2.3.4/tcp/1/p2p/" + idA, err: "no '.'"},
	{name: "empty nonce", link: "peerscope://" + idA + ".?peer=/ip4/1.2.3.4/tcp/1/p2p/" + idA, err: "nonce"},
	{name: "upper-case nonce", link: "peerscope://" + idA + ".ABC?peer=/ip4/1.2.3.4/tcp/1/p2p/" + idA, err: "nonce"},
	{name: "long nonce", link: "peerscope://" + idA + "." + strings.Repeat("a", 33) + "?peer=/ip4/1.2.3.4/tcp/1/p2p/" + idA, err: "nonce"},
	{name: "not a peer ID", link: "peerscope://hello.abc?peer=/ip4/1.2.3.4/tcp/1/p2p/" + idA, err: "is not a peer ID"},
	{name: "RSA broadcaster", link: "peerscope://" + idRSA + ".abc?peer=/ip4/1.2.3.4/tcp/1/p2p/" + idRSA, err: "no ed25519 key"},
	{name: "secp256k1 broadcaster", link: "peerscope://" + idK1 + ".abc?peer=/ip4/1.2.3.4/tcp/1/p2p/" + idK1, err: "no ed25519 key"},
	{name: "CID form of a peer ID", link: "peerscope://bafzaajaiaejcbm4khbdq2avkygowiq3xb6rjdaegolc6ffdhjtkkpvimwicqbyxz.abc?peer=/ip4/1.2.3.4/tcp/1/p2p/" + idA, err: "is not a peer ID"},
	{name: "no peer", link: "peerscope://" + idA + ".abc", err: "no peer="},
	{name: "empty peer", link: "peerscope://" + idA + ".abc?peer=", err: "not a multiaddr"},
	{name: "peer not a multiaddr", link: "peerscope://" + idA + ".abc?peer=1.2.3.4:4001", err: "not a multiaddr"},
	{name: "peer without /p2p", link: "peerscope://" + idA + ".abc?peer=/ip4/1.2.3.4/tcp/1", err: "/p2p/<peer ID>"},
	{name: "peer without an address", link: "peerscope://" + idA + ".abc?peer=/p2p/" + idA, err: "no address"},
	{name: "bad escape", link: "peerscope://" + idA + ".abc?peer=%zz", err: "after '?'"},
	{name: "semicolon", link: "peerscope://" + idA + ".abc?peer=/ip4/1.2.3.4/tcp/1/p2p/" + idA + ";x=1", err: "after '?'"},
	{name: "too many peers", link: "peerscope://" + idA + ".abc" + "?" + strings.Repeat("peer=/ip4/1.2.3.4/tcp/1/p2p/"+idA+"&", 17), err: "more than 16"},
	{name: "too long", link: "peerscope://" + idA + ".abc?x=" + strings.Repeat("a", 4096), err: "more than 4096"},
}

func TestParse(t *testing.T) {
	for _, tc := range linkCases {
		t.Run(tc.name, func(t *testing.T) {
			l, err := link.Parse(tc.link)
			if tc.err != "" {
				if err == nil || !errors.Is(err, link.ErrMalformed) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Parse: %v, want an ErrMalformed saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l.Broadcast != tc.broadcast {
				t.Fatalf("broadcast %q, want %q", l.Broadcast, tc.broadcast)
			}
			got := map[string]int{}
			for _, p := range l.Peers {
				got[p.ID.String()] = len(p.Addrs)
			}
			if len(got) != len(tc.peers) {
				t.Fatalf("peers %v, want %v", got, tc.peers)
			}
			for id, n := range tc.peers {
				if got[id] != n {
					t.Fatalf("peers %v, want %v", got, tc.peers)
				}
			}
			if pid, err := l.Broadcaster(); err != nil || pid.String() != idA {
				t.Fatalf("broadcaster %v, %v", pid, err)
			}
			again, err := link.Parse(l.String())
			if err != nil || !sameLink(l, again) {
				t.Fatalf("%s\nwritten out as %s\nreads back as %+v (%v)", tc.link, l.String(), again, err)
			}
		})
	}
}

func sameLink(a, b link.Link) bool {
	return a.Broadcast == b.Broadcast && slices.EqualFunc(a.Peers, b.Peers, func(x, y peer.AddrInfo) bool {
		return x.ID == y.ID && slices.EqualFunc(x.Addrs, y.Addrs, ma.Multiaddr.Equal)
	})
}

// FuzzParse: any input gives a link or an ErrMalformed, never a panic,
// and a link that parses is written out as one that parses back the same.
func FuzzParse(f *testing.F) {
	for _, tc := range linkCases {
		f.Add(tc.link)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := link.Parse(s)
		if err != nil {
			if !errors.Is(err, link.ErrMalformed) {
				t.Fatalf("error %v is not an ErrMalformed", err)
			}
			return
		}
		again, err := link.Parse(l.String())
		if err != nil {
			t.Fatalf("%q parsed, but its written form %q does not: %v", s, l.String(), err)
		}
		if !sameLink(l, again) {
			t.Fatalf("%q: %+v, written out and read back: %+v", s, l, again)
		}
	})
}

// TestNewBroadcastID: a fresh ID names its broadcaster and carries the
// broadcaster's key; two IDs of one broadcaster differ.
func TestNewBroadcastID(t *testing.T) {
	priv, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	id := link.NewBroadcastID(pid)
	got, key, err := link.BroadcasterOf(id)
	if err != nil || got != pid {
		t.Fatalf("BroadcasterOf(%q) = %v, %v", id, got, err)
	}
	msg := []byte("signed by the broadcaster")
	sig, err := priv.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(key, msg, sig) {
		t.Fatal("the key from the ID does not verify the broadcaster's signature")
	}
	if again := link.NewBroadcastID(pid); again == id || !strings.HasPrefix(again, pid.String()+".") {
		t.Fatalf("two IDs %q and %q", id, again)
	}
}
