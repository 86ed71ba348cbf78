package e2e

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Client talks to the site like a browser posting its forms: same-origin
// headers, no redirects followed.
type Client struct {
	HTTP *http.Client
}

// NewClient returns a Client with a timeout and keep-alive connections.
func NewClient() *Client {
	return &Client{HTTP: &http.Client{
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{MaxIdleConnsPerHost: 64},
	}}
}

// PostForm posts form to base+path as a same-origin browser form and
// returns the status.
func (c *Client) PostForm(base, path string, form url.Values) (int, error) {
	req, err := http.NewRequest("POST", base+path, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	res, err := c.HTTP.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, nil
}

// Signup signs an address up and fails the test unless the site answers
// with the "check your inbox" redirect.
func (c *Client) Signup(t testing.TB, base, email string) {
	t.Helper()
	status, err := c.PostForm(base, "/signup", url.Values{"email": {email}, "password": {"a long and unusual passphrase"}})
	if err != nil {
		t.Errorf("signup %s: %v", email, err)
		return
	}
	if status != http.StatusSeeOther {
		t.Errorf("signup %s: status %d", email, status)
	}
}
