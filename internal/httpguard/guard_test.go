package httpguard_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"signup/internal/httpguard"
)

func newGuard(t *testing.T, p httpguard.Policy) http.Handler {
	t.Helper()
	g, err := httpguard.New(p)
	if err != nil {
		t.Fatal(err)
	}
	return g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, "read: too large", http.StatusRequestEntityTooLarge)
			return
		}
		io.WriteString(w, "secret page")
	}))
}

// A page on an attacker's name that resolves to the listener (DNS
// rebinding) gets 421 and nothing of the page; the configured names, any
// case, with or without a port, get through.
func TestHosts(t *testing.T) {
	h := newGuard(t, httpguard.Policy{
		Hosts:   []string{"localhost", "127.0.0.1", "[::1]", "ops.internal"},
		Headers: http.Header{"X-Frame-Options": {"DENY"}},
	})
	for host, ok := range map[string]bool{
		"localhost": true, "LOCALHOST:9090": true, "127.0.0.1:9090": true, "[::1]:9090": true,
		"ops.internal.": true, "rebind.attacker.example": false, "rebind.attacker.example:9090": false,
		"127.0.0.2:9090": false, "": false,
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Host = host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if ok && (w.Code != http.StatusOK || w.Body.String() != "secret page") {
			t.Errorf("Host %q: %d %q, want the page", host, w.Code, w.Body.String())
		}
		if !ok && (w.Code != http.StatusMisdirectedRequest || w.Body.Len() != 0 || w.Header().Get("X-Frame-Options") != "") {
			t.Errorf("Host %q: %d %q, want 421 and nothing else", host, w.Code, w.Body.String())
		}
	}
	r := httptest.NewRequest(http.MethodPost, "/outbox/1/retry", nil)
	r.Host = "rebind.attacker.example"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusMisdirectedRequest {
		t.Errorf("POST for a rebound name: %d, want 421", w.Code)
	}
}

func TestHeadersBodyAndCrossOrigin(t *testing.T) {
	h := newGuard(t, httpguard.Policy{
		Headers:        http.Header{"Content-Security-Policy": {"default-src 'none'"}, "x-content-type-options": {"nosniff"}},
		MaxBodyBytes:   10,
		TrustedOrigins: []string{"https://example.com"},
	})
	serve := func(method, body string, hdr map[string]string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, "/", strings.NewReader(body))
		if body == "" {
			r.Body = http.NoBody
		}
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	w := serve(http.MethodGet, "", nil)
	if w.Code != 200 || w.Header().Get("Content-Security-Policy") != "default-src 'none'" || w.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("GET: %d %v", w.Code, w.Header())
	}
	if w := serve(http.MethodPost, strings.Repeat("x", 11), nil); w.Code != http.StatusRequestEntityTooLarge || w.Header().Get("Connection") != "close" {
		t.Fatalf("11-byte body: %d, want 413 and close", w.Code)
	}
	// Read past the cap without a Content-Length.
	r := httptest.NewRequest(http.MethodPost, "/", io.MultiReader(strings.NewReader(strings.Repeat("y", 20))))
	r.ContentLength = -1
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked body over the cap: %d, want 413", w.Code)
	}
	if w := serve(http.MethodPost, "ok", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}); w.Code != http.StatusForbidden || strings.Contains(w.Body.String(), "secret") {
		t.Fatalf("cross-origin POST: %d %q, want 403", w.Code, w.Body.String())
	}
	if w := serve(http.MethodPost, "ok", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://example.com"}); w.Code != 200 {
		t.Fatalf("POST from a trusted origin: %d, want 200", w.Code)
	}
	if w := serve(http.MethodPost, "ok", map[string]string{"Sec-Fetch-Site": "same-origin"}); w.Code != 200 {
		t.Fatalf("same-origin POST: %d, want 200", w.Code)
	}
}

// nopWriter is a ResponseWriter that keeps its header map between requests,
// like the server's, so only the guard's own allocations are counted.
type nopWriter struct{ h http.Header }

func (w nopWriter) Header() http.Header         { return w.h }
func (w nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w nopWriter) WriteHeader(int)             {}

// The guard costs a page GET no allocation: it sits on the site's hot path.
func TestNoAllocationOnAGet(t *testing.T) {
	g, err := httpguard.New(httpguard.Policy{
		Hosts: []string{"localhost"},
		Headers: http.Header{"Content-Security-Policy": {"default-src 'none'"}, "X-Frame-Options": {"DENY"},
			"Referrer-Policy": {"no-referrer"}, "X-Content-Type-Options": {"nosniff"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	h := g.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest(http.MethodGet, "/signup", nil)
	r.Host = "localhost:8080"
	r.Body = http.NoBody
	w := nopWriter{h: http.Header{}}
	if n := testing.AllocsPerRun(100, func() { h.ServeHTTP(w, r) }); n != 0 {
		t.Fatalf("%v allocations per GET, want 0", n)
	}
}
