package bootstrap

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/peerscope/peerscope/bootstrap/api"
)

// TwitterConfig configures sign-in with Twitter (X): OAuth 2.0
// authorization code with PKCE (S256). The endpoints default to X's; tests
// and local setups point them at a stand-in (package xstandin).
type TwitterConfig struct {
	ClientID     string
	ClientSecret string // empty for a public client
	// RedirectURL is this bootstrap's callback, registered with the
	// provider: https://bootstrap.example/api/v1/auth/twitter/callback.
	RedirectURL string

	AuthorizeURL string // default https://twitter.com/i/oauth2/authorize
	TokenURL     string // default https://api.twitter.com/2/oauth2/token
	// APIURL is the API's base: users/me, users/:id/following and tweets
	// hang under it. Default https://api.twitter.com/2.
	APIURL string
}

// X's endpoints.
const (
	DefaultTwitterAuthorizeURL = "https://twitter.com/i/oauth2/authorize"
	DefaultTwitterTokenURL     = "https://api.twitter.com/2/oauth2/token"
	DefaultTwitterAPIURL       = "https://api.twitter.com/2"
)

func (c *TwitterConfig) fill() {
	if c.AuthorizeURL == "" {
		c.AuthorizeURL = DefaultTwitterAuthorizeURL
	}
	if c.TokenURL == "" {
		c.TokenURL = DefaultTwitterTokenURL
	}
	if c.APIURL == "" {
		c.APIURL = DefaultTwitterAPIURL
	}
	c.APIURL = strings.TrimRight(c.APIURL, "/")
}

// twitterScopes maps the sign-in's options to X's scope names.
// offline.access gives a refresh token, for later imports and posts.
func twitterScopes(opts []string) string {
	s := []string{"users.read", "tweet.read", "offline.access"}
	for _, o := range opts {
		switch o {
		case api.ScopeFollows:
			s = append(s, "follows.read")
		case api.ScopeTweet:
			s = append(s, "tweet.write")
		}
	}
	return strings.Join(s, " ")
}

// newVerifier returns a PKCE code verifier (43 characters of base64url,
// 256 random bits) and its S256 challenge.
func newVerifier() (verifier, challenge string) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	verifier = base64.RawURLEncoding.EncodeToString(b[:])
	return verifier, pkceChallenge(verifier)
}

func pkceChallenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// authorizeURL is where the browser goes to sign in.
func (c *TwitterConfig) authorizeURL(state, challenge, scopes string) string {
	q := url.Values{
		"response_type":         {"code"},
		"client_id":             {c.ClientID},
		"redirect_uri":          {c.RedirectURL},
		"scope":                 {scopes},
		"state":                 {state},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
	}
	sep := "?"
	if strings.Contains(c.AuthorizeURL, "?") {
		sep = "&"
	}
	return c.AuthorizeURL + sep + q.Encode()
}

// twitterToken is the token endpoint's answer.
type twitterToken struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	ExpiresIn    int64  `json:"expires_in"`
	Scope        string `json:"scope"`
	TokenType    string `json:"token_type"`
}

// errProviderRefused is a 4xx from the provider: the request was wrong
// (a bad code, a wrong PKCE verifier), not the provider down.
var errProviderRefused = fmt.Errorf("%w (4xx)", ErrProvider)

// maxProviderBody bounds what the bootstrap reads from the provider.
const maxProviderBody = 1 << 20

// exchange trades an authorization code for tokens, proving the PKCE
// verifier; a confidential client authenticates with HTTP Basic.
func (c *TwitterConfig) exchange(ctx context.Context, hc *http.Client, code, verifier string) (twitterToken, error) {
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {c.RedirectURL},
		"code_verifier": {verifier},
		"client_id":     {c.ClientID},
	}
	var tok twitterToken
	err := c.call(ctx, hc, http.MethodPost, c.TokenURL, "", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()), &tok, true)
	if err != nil {
		return tok, err
	}
	if tok.AccessToken == "" || !strings.EqualFold(tok.TokenType, "bearer") {
		return tok, fmt.Errorf("%w: token response without a bearer token", ErrProvider)
	}
	return tok, nil
}

// refresh trades a refresh token for a new access token (and a new
// refresh token: X's are single use).
func (c *TwitterConfig) refresh(ctx context.Context, hc *http.Client, refreshToken string) (twitterToken, error) {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}, "client_id": {c.ClientID}}
	var tok twitterToken
	err := c.call(ctx, hc, http.MethodPost, c.TokenURL, "", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()), &tok, true)
	if err == nil && (tok.AccessToken == "" || !strings.EqualFold(tok.TokenType, "bearer")) {
		err = fmt.Errorf("%w: refresh response without a bearer token", ErrProvider)
	}
	return tok, err
}

// twitterUser is a user object of X's API v2.
type twitterUser struct {
	ID              string `json:"id"`
	Name            string `json:"name"`
	Username        string `json:"username"`
	ProfileImageURL string `json:"profile_image_url"`
}

// me returns the signed-in user.
func (c *TwitterConfig) me(ctx context.Context, hc *http.Client, token string) (twitterUser, error) {
	var out struct {
		Data twitterUser `json:"data"`
	}
	err := c.call(ctx, hc, http.MethodGet, c.APIURL+"/users/me?user.fields=profile_image_url", token, "", nil, &out, false)
	if err == nil && out.Data.ID == "" {
		err = fmt.Errorf("%w: users/me without an id", ErrProvider)
	}
	return out.Data, err
}

// following returns who the user follows, up to max, following the
// pagination tokens.
func (c *TwitterConfig) following(ctx context.Context, hc *http.Client, token, id string, max int) ([]twitterUser, error) {
	var all []twitterUser
	next := ""
	for len(all) < max {
		u := c.APIURL + "/users/" + url.PathEscape(id) + "/following?max_results=1000&user.fields=profile_image_url"
		if next != "" {
			u += "&pagination_token=" + url.QueryEscape(next)
		}
		var page struct {
			Data []twitterUser `json:"data"`
			Meta struct {
				NextToken string `json:"next_token"`
			} `json:"meta"`
		}
		if err := c.call(ctx, hc, http.MethodGet, u, token, "", nil, &page, false); err != nil {
			return all, err
		}
		all = append(all, page.Data...)
		if page.Meta.NextToken == "" || len(page.Data) == 0 {
			break
		}
		next = page.Meta.NextToken
	}
	if len(all) > max {
		all = all[:max]
	}
	return all, nil
}

// tweet posts text as the user and returns the tweet's ID.
func (c *TwitterConfig) tweet(ctx context.Context, hc *http.Client, token, text string) (string, error) {
	body, _ := json.Marshal(map[string]string{"text": text})
	var out struct {
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := c.call(ctx, hc, http.MethodPost, c.APIURL+"/tweets", token, "application/json", strings.NewReader(string(body)), &out, false); err != nil {
		return "", err
	}
	return out.Data.ID, nil
}

func (c *TwitterConfig) call(ctx context.Context, hc *http.Client, method, u, bearer, ctype string, body io.Reader, out any, clientAuth bool) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrProvider, err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Accept", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if clientAuth && c.ClientSecret != "" {
		req.SetBasicAuth(url.QueryEscape(c.ClientID), url.QueryEscape(c.ClientSecret))
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrProvider, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxProviderBody))
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrProvider, req.URL.Path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
			Title       string `json:"title"`
			Detail      string `json:"detail"`
		}
		_ = json.Unmarshal(b, &e)
		msg := strings.TrimSpace(e.Error + " " + e.Description + " " + e.Title + " " + e.Detail)
		kind := ErrProvider
		if resp.StatusCode/100 == 4 {
			kind = errProviderRefused
		}
		return fmt.Errorf("%w: %s: %s %s", kind, req.URL.Path, resp.Status, clip(msg, 200))
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrProvider, req.URL.Path, err)
	}
	return nil
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
