package node_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/peerscope/peerscope/internal/browsertest"
	"github.com/peerscope/peerscope/node"
)

// attackPage is another site's page, which the node's owner visits: it
// reads the node, the player's path and a link to join from its query and
// tries what a page can send to another origin.
const attackPage = `<!doctype html><meta charset="utf-8"><title>a page on another site</title><body><script>
window.attack = { seen: {}, done: false };
(async () => {
  const q = new URLSearchParams(location.search);
  const node = q.get('node'), player = q.get('player'), link = q.get('link');
  const seen = window.attack.seen;
  const u = (p) => new URL(p, node).href;
  // Simple requests: no preflight, the answer unreadable, the work done.
  const simple = async (name, path, body) => {
    try {
      const r = await fetch(u(path), { method: 'POST', mode: 'no-cors', headers: { 'Content-Type': 'text/plain' }, body });
      seen[name] = r.type;
    } catch (e) { seen[name] = 'failed: ' + e.message; }
  };
  await simple('comment', player + 'chat/comment', JSON.stringify({ text: 'cross-site fetch' }));
  await simple('heart', player + 'chat/heart', JSON.stringify({ n: 40 }));
  await simple('join', '/directory/api/node/watch', JSON.stringify({ link }));
  seen.beacon = navigator.sendBeacon(u(player + 'chat/comment'), JSON.stringify({ text: 'cross-site beacon' }));
  // A form with enctype text/plain: the JSON hides in the field's name.
  await new Promise((resolve) => {
    const sink = document.createElement('iframe');
    sink.name = 'sink';
    sink.hidden = true;
    document.body.append(sink);
    const form = document.createElement('form');
    form.method = 'POST';
    form.enctype = 'text/plain';
    form.target = 'sink';
    form.action = u(player + 'chat/comment');
    const field = document.createElement('input');
    field.name = '{"text":"cross-site form","x":"';
    field.value = '"}';
    form.append(field);
    document.body.append(form);
    sink.addEventListener('load', resolve, { once: true });
    setTimeout(resolve, 5000);
    form.submit();
  });
  seen.form = 'submitted';
  // JSON with a guessed token: the browser asks first (a preflight).
  const preflighted = async (name, path, body) => {
    try {
      const r = await fetch(u(path), { method: 'POST', headers: { 'Content-Type': 'application/json', 'Peerscope-Token': 'guess' },
        body: JSON.stringify(body) });
      seen[name] = r.status;
    } catch (e) { seen[name] = 'failed: ' + e.message; }
  };
  await preflighted('jsonComment', player + 'chat/comment', { text: 'cross-site json' });
  await preflighted('jsonHeart', player + 'chat/heart', { n: 40 });
  await preflighted('jsonJoin', '/directory/api/node/watch', { link });
  // The player page, for its token.
  try { seen.read = (await fetch(u(player))).status; } catch (e) { seen.read = 'failed: ' + e.message; }
  window.attack.done = true;
})();
</script></body>`

// TestCrossOriginPages: a page of another site (another loopback port)
// and a DNS-rebinding page (evil.test on the node's port) try, in headless
// Chromium, to comment, heart and join in the node's name; the node does
// none of it — its room's log holds only the owner's comment, its heart
// total only the owner's hearts, and it joined nothing — while the owner's
// own player page still comments and hearts, with no console error.
func TestCrossOriginPages(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test")
	}
	browsertest.Need(t)
	n := newNode(t, node.Config{})
	b := liveWithChat(t, n, "the owner's broadcast")
	target := liveWithChat(t, newNode(t, node.Config{}), "somewhere to be dragged")
	stream := openChat(t, b, "")
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(attackPage))
	}))
	defer attacker.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	out, err := browsertest.Run(ctx, t, "crossorigin.mjs", "--attack", attacker.URL+"/", "--node", n.HTTPURL(),
		"--player", b.URLs().Path, "--link", target.Link().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("crossorigin.mjs: %s", out)
	var r struct {
		Error       string
		Errors      []string
		OwnerErrors []string
		CrossSite   map[string]any
		Rebinding   map[string]any
		OwnerFeed   []string
		OwnerNote   string
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("crossorigin.mjs printed %s: %v", out, err)
	}
	if r.Error != "" {
		t.Fatal(r.Error)
	}
	if !slices.Contains(r.OwnerFeed, "from the owner page") || r.OwnerNote != "" {
		t.Fatalf("the owner's page: feed %q, note %q", r.OwnerFeed, r.OwnerNote)
	}
	if log := chatLog(t, b); !slices.Equal(log, []string{"from the owner page"}) {
		t.Errorf("the room's log: %q, want the owner's comment only", log)
	}
	if h := heartsAfter(t, stream, 3); h != 3 {
		t.Errorf("%d hearts counted, want the owner's 3", h)
	}
	if n.Lookup(target.ID()) != nil || len(n.Broadcasts()) != 1 {
		t.Errorf("the node joined %d broadcasts, the attacker's target among them: %v", len(n.Broadcasts()), n.Lookup(target.ID()) != nil)
	}
	if r.Rebinding["token"] == true {
		t.Errorf("the rebinding page read the token: %v", r.Rebinding)
	}
	if len(r.OwnerErrors) > 0 || len(r.Errors) > 0 {
		t.Errorf("errors: owner's page %q, attackers' pages %q", r.OwnerErrors, r.Errors)
	}
}
