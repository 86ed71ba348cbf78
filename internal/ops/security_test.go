package ops_test

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"

	"signup/internal/ops"
	"signup/internal/pagetest"
)

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// do sends a request to b's listener with Host host (empty: the real one)
// and headers hdr, and returns the response and its body.
func (b *bundle) do(t *testing.T, method, path, host string, body io.Reader, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, b.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return pagetest.Do(t, noRedirect, req)
}

// DNS rebinding: a page on an attacker's name that resolves to 127.0.0.1
// read the dashboard and retried mail as a same-origin request. The
// listener now answers only to its own names.
func TestOpsRefusesOtherHosts(t *testing.T) {
	b := setup(t)
	for _, path := range []string{"/", "/metrics", "/debug/pprof/", "/ops.css"} {
		res, body := b.do(t, http.MethodGet, path, "rebind.attacker.example", nil, nil)
		if res.StatusCode != http.StatusMisdirectedRequest || body != "" {
			t.Errorf("GET %s for rebind.attacker.example = %d %q, want 421 and nothing else", path, res.StatusCode, body)
		}
	}
	res, _ := b.do(t, http.MethodPost, "/outbox/1/retry", "rebind.attacker.example:9090", nil,
		map[string]string{"Sec-Fetch-Site": "same-origin", "Content-Type": "application/x-www-form-urlencoded"})
	if res.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("same-origin POST for a rebound name = %d, want 421", res.StatusCode)
	}
	for _, host := range []string{"", "localhost:9090", "[::1]:9090"} {
		if res, _ := b.do(t, http.MethodGet, "/", host, nil, nil); res.StatusCode != http.StatusOK {
			t.Errorf("GET / for %q = %d, want 200", host, res.StatusCode)
		}
	}
}

// The process's arguments may carry DATABASE_URL or SMTP_URL with their
// passwords: /debug/pprof/cmdline served them.
func TestOpsServesNoCmdline(t *testing.T) {
	b := setup(t)
	res, body := b.do(t, http.MethodGet, "/debug/pprof/cmdline", "", nil, nil)
	if res.StatusCode != http.StatusNotFound || strings.Contains(body, os.Args[0]) {
		t.Fatalf("GET /debug/pprof/cmdline = %d %q, want 404 without the arguments", res.StatusCode, body)
	}
}

const testToken = "0123456789abcdef-ops-test-token"

func TestOpsToken(t *testing.T) {
	b := setup(t, func(c *ops.HandlerConfig) { c.Token = testToken })
	bearer := map[string]string{"Authorization": "Bearer " + testToken}

	res, _ := b.do(t, http.MethodGet, "/", "", nil, nil)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/login" {
		t.Fatalf("GET / without the token = %d to %q, want the sign-in form", res.StatusCode, res.Header.Get("Location"))
	}
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1"} {
		if res, body := b.do(t, http.MethodGet, path, "", nil, nil); res.StatusCode != http.StatusUnauthorized || strings.Contains(body, "goroutine") {
			t.Errorf("GET %s without the token = %d, want 401", path, res.StatusCode)
		}
	}
	if res, _ := b.do(t, http.MethodPost, "/outbox/1/retry", "", nil, map[string]string{"Sec-Fetch-Site": "same-origin"}); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("retry without the token = %d, want 401", res.StatusCode)
	}
	if res, _ := b.do(t, http.MethodGet, "/", "", nil, map[string]string{"Authorization": "Bearer wrong"}); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET / with a wrong token = %d, want 401", res.StatusCode)
	}
	if res, body := b.do(t, http.MethodGet, "/metrics", "", nil, nil); res.StatusCode != http.StatusOK || !strings.Contains(body, "signup_mail_queue_capacity") {
		t.Errorf("GET /metrics without the token = %d, want 200 (OPS_METRICS_AUTH is off)", res.StatusCode)
	}
	if res, body := b.do(t, http.MethodGet, "/debug/pprof/", "", nil, bearer); res.StatusCode != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("GET /debug/pprof/ with the token = %d", res.StatusCode)
	}

	// The sign-in form.
	res, body := b.do(t, http.MethodGet, "/login", "", nil, nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /login = %d", res.StatusCode)
	}
	pagetest.MustContain(t, "sign-in form", body, `name="token"`, `type="password"`)
	form := func(tok string) io.Reader { return strings.NewReader(url.Values{"token": {tok}}.Encode()) }
	post := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "same-origin"}
	if res, _ := b.do(t, http.MethodPost, "/login", "", form("wrong"), post); res.StatusCode != http.StatusUnauthorized || len(res.Cookies()) != 0 {
		t.Fatalf("sign-in with a wrong token = %d, cookies %v", res.StatusCode, res.Cookies())
	}
	res, _ = b.do(t, http.MethodPost, "/login", "", form(testToken), post)
	cookies := res.Cookies()
	if res.StatusCode != http.StatusSeeOther || len(cookies) != 1 {
		t.Fatalf("sign-in = %d, cookies %v", res.StatusCode, cookies)
	}
	c := cookies[0]
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || strings.Contains(c.Value, testToken) {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, no token in it", c)
	}
	res, body = b.do(t, http.MethodGet, "/", "", nil, map[string]string{"Cookie": c.Name + "=" + c.Value})
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET / signed in = %d", res.StatusCode)
	}
	pagetest.MustContain(t, "dashboard", body, `action="/logout"`)
	forged := c.Name + "=99999999999." + strings.Repeat("0", 64)
	if res, _ := b.do(t, http.MethodGet, "/", "", nil, map[string]string{"Cookie": forged}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("GET / with a forged cookie = %d, want the sign-in form", res.StatusCode)
	}
}

func TestOpsMetricsAuth(t *testing.T) {
	b := setup(t, func(c *ops.HandlerConfig) { c.Token, c.MetricsAuth = testToken, true })
	if res, body := b.do(t, http.MethodGet, "/metrics", "", nil, nil); res.StatusCode != http.StatusUnauthorized || strings.Contains(body, "signup_") {
		t.Fatalf("GET /metrics without the token = %d, want 401", res.StatusCode)
	}
	if res, _ := b.do(t, http.MethodGet, "/metrics", "", nil, map[string]string{"Authorization": "Bearer " + testToken}); res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics with the token = %d, want 200", res.StatusCode)
	}
}
