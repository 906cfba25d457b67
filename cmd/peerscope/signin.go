package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/peerscope/peerscope/identity"
	"github.com/peerscope/peerscope/node"
)

// stdin is what signin reads a texted code from (a test's pipe).
var stdin io.Reader = os.Stdin

func runSignIn(ctx context.Context, args []string) error {
	fs := newFlagSet("signin", "--bootstrap URL --data DIR [--phone NUMBER]", `
Signs this node in at a community bootstrap, so that it has a name in the
chat and the directory, can broadcast privately, and can be invited to
private broadcasts (the node publishes its audience device key there).

A sign-in belongs to the node's identity key, which --data keeps: give
'broadcast' and 'watch' the same --data afterwards.

With --phone, a code is texted to the number and asked for here. Without
it, signin prints this node's directory page: sign in with Twitter there,
in a browser on this machine; signin waits until it is done (Ctrl-C to
give up). A node already signed in says as whom and stops.`)
	nf := addNodeFlags(fs, nodeDefaults{http: "127.0.0.1:0", listen: "/ip4/127.0.0.1/tcp/0"})
	phone := fs.String("phone", "", "sign in with this phone number, in international form (+15550123): a code is texted to it")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() != 0:
		return usagef("signin", "takes no arguments, got %q", fs.Args())
	case *nf.bootstrap == "":
		return usagef("signin", "need --bootstrap URL: the community bootstrap to sign in at")
	case *nf.data == "":
		return usagef("signin", "need --data DIR: a sign-in belongs to the node's identity key, which would be lost at exit without it")
	}
	cfg, err := nf.config(true)
	if err != nil {
		return usagef("signin", "%v", err)
	}
	n, err := node.New(ctx, cfg)
	if err != nil {
		return startErr(err, cfg, "stop it first, or sign in on its directory page (/directory/ on its --http)")
	}
	defer n.Close()
	if id, err := n.RefreshIdentity(ctx); err == nil {
		fmt.Printf("This node is signed in already, as %s.\n", whoIs(id))
		return nil
	}
	var id identity.Identity
	if *phone != "" {
		id, err = phoneSignIn(ctx, n, *phone, bufio.NewScanner(stdin), os.Stdout)
	} else {
		id, err = awaitSignIn(ctx, n, os.Stdout)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("signin: %w", err)
	}
	fmt.Printf("Signed in as %s. Use --data %s with broadcast and watch: broadcasters can now invite you,\n"+
		"and 'broadcast --private' can pick who watches.\n", whoIs(id), *nf.data)
	return nil
}

// whoIs names an identity as a person would.
func whoIs(id identity.Identity) string {
	if id.Handle != "" {
		return fmt.Sprintf("%s (%s)", id.Handle, id.Provider)
	}
	return id.AccountKey()
}

// awaitSignIn prints where to sign in and waits until the node is.
func awaitSignIn(ctx context.Context, n *node.Node, w io.Writer) (identity.Identity, error) {
	fmt.Fprintf(w, "Open %s in a browser on this machine and sign in with Twitter there.\nWaiting for it (Ctrl-C to give up)…\n", n.DirectoryURL())
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return identity.Identity{}, ctx.Err()
		case <-t.C:
		}
		if id, err := n.RefreshIdentity(ctx); err == nil {
			return id, nil
		}
	}
}

// phoneSignIn has the bootstrap text a code to phone and proves it with
// what the person types (three tries), through the node's own API, as its
// directory page does.
func phoneSignIn(ctx context.Context, n *node.Node, phone string, in *bufio.Scanner, w io.Writer) (identity.Identity, error) {
	if err := nodeAPI(ctx, n, "phone/start", map[string]string{"phone": phone}); err != nil {
		return identity.Identity{}, fmt.Errorf("texting a code to %s: %w", phone, err)
	}
	for try := 1; ; try++ {
		fmt.Fprintf(w, "A code was texted to %s. Type it here: ", phone)
		if !in.Scan() {
			fmt.Fprintln(w)
			return identity.Identity{}, errors.New("no code typed")
		}
		err := nodeAPI(ctx, n, "phone/verify", map[string]string{"phone": phone, "code": strings.TrimSpace(in.Text())})
		if err == nil {
			return n.RefreshIdentity(ctx)
		}
		if try == 3 || ctx.Err() != nil {
			return identity.Identity{}, err
		}
		fmt.Fprintf(w, "That did not work: %v\n", err)
	}
}

// nodeAPI posts to the node's own directory API as its owner's page does,
// and turns a refusal into its message.
func nodeAPI(ctx context.Context, n *node.Node, path string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.HTTPURL()+"/directory/api/node/"+path, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Peerscope-Token", n.APIToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	var e struct {
		Error struct{ Message string } `json:"error"`
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&e)
	if e.Error.Message == "" {
		e.Error.Message = resp.Status
	}
	return errors.New(e.Error.Message)
}
