package web

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/peerscope/peerscope/chat"
)

// TestEventJSON pins the events' JSON, the contract chat.js reads: names,
// fields, and which events only the owner's stream gets.
func TestEventJSON(t *testing.T) {
	priv, err := crypto.UnmarshalEd25519PrivateKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := peer.IDFromPrivateKey(priv)
	id := chat.CommentID{Author: p, Seq: 7}
	at := time.UnixMilli(1_700_000_000_123)
	who := &chat.Identity{Provider: "twitter", Account: "1", Handle: "@a", Name: "A", Avatar: "https://a/a.png"}
	P, ID := p.String(), id.String()
	for _, c := range []struct {
		e         chat.Event
		name      string
		ownerOnly bool
		json      string
	}{
		{&chat.Comment{ID: id, Author: chat.Author{Peer: p}, Text: "hi", At: at, Received: at.Add(time.Second)}, "comment", false,
			`{"id":"` + ID + `","author":{"peer":"` + P + `","anonymous":true},"text":"hi","at":1700000000123,"received":1700000001123}`},
		{&chat.Comment{ID: id, Author: chat.Author{Peer: p, Identity: who, Moderator: true}, Text: "hi", At: at, Deleted: true}, "comment", false,
			`{"id":"` + ID + `","author":{"peer":"` + P + `","anonymous":false,"handle":"@a","name":"A","avatar":"https://a/a.png","moderator":true},"text":"hi","at":1700000000123,"received":0,"deleted":true}`},
		{&chat.Hearts{Count: 3, Total: 10}, "hearts", false, `{"count":3,"total":10}`},
		{&chat.Moderated{Op: chat.OpMute, Target: "peer:" + P, Until: at, Seq: 9}, "moderated", false,
			`{"op":"mute","target":"peer:` + P + `","on":false,"until":1700000000123}`},
		{&chat.Moderated{Op: chat.OpCommentsOff, On: true}, "moderated", false, `{"op":"comments-off","on":true}`},
		{&chat.Summons{Call: 1 << 62, Comment: id, Text: "spam", Deadline: at}, "summons", false,
			`{"call":"4611686018427387904","comment":"` + ID + `","text":"spam","deadline":1700000000123}`},
		{&chat.Reported{Comment: id, By: p}, "reported", true, `{"comment":"` + ID + `","by":"` + P + `"}`},
		{&chat.Verdict{Call: 5, Comment: id, Guilty: true, For: 3, Against: 1, Jurors: 5, Until: at}, "verdict", true,
			`{"call":"5","comment":"` + ID + `","guilty":true,"for":3,"against":1,"jurors":5}`},
	} {
		name, v, ownerOnly := eventJSON(c.e)
		b, err := json.Marshal(v)
		if err != nil || name != c.name || ownerOnly != c.ownerOnly || string(b) != c.json {
			t.Errorf("%T: %q %v %s (%v)\nwant %q %v %s", c.e, name, ownerOnly, b, err, c.name, c.ownerOnly, c.json)
		}
	}
}
