package bootstrap

import (
	"bytes"
	"encoding/json"
	"html/template"
	"net/http"
	"strings"

	"github.com/peerscope/peerscope/bootstrap/api"
)

// The pages a browser lands on when X sends it back to the bootstrap: the
// one-time code to type into the node's page, or why the sign-in failed.
// They look like the directory page (its colours, light or dark, a phone's
// width) and lead back where the person came from: their node's page when
// the sign-in said so (its return URL, a loopback page), else the
// directory.

type codePageData struct {
	api.SignInCode
	Handle, Node string
}

type callbackPageData struct {
	Code    *codePageData // the code to type in; nil on a failure
	Problem string        // why the sign-in failed
	Why     string        // its error code, as the API gives it (invalid_state…)
	Back    string        // where to go back to
}

// wantsJSON says whether the callback's client asked for JSON (a program)
// rather than a page.
func wantsJSON(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

// failCallback answers a failed callback: as every API error to a program,
// as a page to a browser, with a link to back (or the directory).
func (s *Server) failCallback(w http.ResponseWriter, r *http.Request, err error, back string) {
	if wantsJSON(r) {
		s.fail(w, r, err)
		return
	}
	rec := &recorder{h: http.Header{}}
	s.fail(rec, r, err)
	var body api.ErrorBody
	msg := "the sign-in did not go through"
	if json.Unmarshal(rec.body.Bytes(), &body) == nil && body.Error.Message != "" {
		msg = body.Error.Message
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	writeCallbackPage(w, rec.status, callbackPageData{Problem: msg, Why: body.Error.Code, Back: back})
}

// recorder keeps what fail writes, to be shown as a page instead.
type recorder struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (c *recorder) Header() http.Header         { return c.h }
func (c *recorder) Write(b []byte) (int, error) { return c.body.Write(b) }
func (c *recorder) WriteHeader(status int)      { c.status = status }

func writeCallbackPage(w http.ResponseWriter, status int, d callbackPageData) {
	if d.Back == "" {
		d.Back = "/"
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_ = callbackPage.Execute(w, d)
}

var callbackPage = template.Must(template.New("callback").Parse(`<!doctype html>
<html lang="en">
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{if .Code}}Finish signing in{{else}}Not signed in{{end}} — Peerscope</title>
<style>
:root { color-scheme: light dark; --accent: #e0245e; }
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 34em; padding: 0 1em 3em; line-height: 1.45; overflow-wrap: anywhere; }
header { display: flex; align-items: center; justify-content: space-between; gap: 1em; }
header h1 { font-size: 1.4em; }
header a { color: inherit; text-decoration: none; }
h2 { font-size: 1.2em; }
.code { font-size: 2em; letter-spacing: .1em; font-weight: 700; margin: .4em 0; }
.problem { border-left: .25em solid var(--accent); padding: .3em .8em; }
a.back { display: inline-block; background: var(--accent); color: white; border-radius: 1em; padding: .45em 1em; text-decoration: none; }
.warn { border: 1px solid #8886; border-radius: .6em; padding: .6em .8em; }
</style>
<header><h1><a href="/">Peerscope</a></h1></header>
{{with .Code}}
<h2>One more step</h2>
<p>X says you are <b>{{.Handle}}</b>. A Peerscope node (<code>{{.Node}}</code>) asked to sign in as you.
Nothing has been signed yet.</p>
<p>If you just pressed <i>Sign in</i> on your own node's page, type this code there:</p>
<p class="code" id="code">{{.Code}}</p>
<p>It works once, for that node only, until {{.Expires.Format "15:04 MST"}}.</p>
<p class="warn"><b>If you did not, close this page and give the code to nobody:</b> someone is trying to
act in your name. Whoever asked you to open the link cannot finish without it.</p>
{{else}}
<h2>Not signed in</h2>
<p class="problem" id="problem">{{.Problem}}{{with .Why}} <small>({{.}})</small>{{end}}</p>
<p>Nothing was signed. Press <i>Sign in</i> again on your node's page to start over.</p>
<p><a class="back" id="back" href="{{.Back}}">{{if eq .Back "/"}}Back to the directory{{else}}Back to your node's page{{end}}</a></p>
{{end}}
`))
