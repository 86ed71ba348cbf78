package http_test

import (
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"
)

// served records what a RequestObserver is told.
type served struct {
	mu   sync.Mutex
	seen []string
}

func (s *served) Served(route, method string, status int, took time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if took <= 0 {
		route += " (no duration)"
	}
	s.seen = append(s.seen, method+" "+route+" "+http.StatusText(status))
}

// TestRequestObserver: each request is reported under its route pattern,
// never its path or query, with the status written (200 when the handler
// wrote none).
func TestRequestObserver(t *testing.T) {
	rec := &served{}
	b := setup(t, func(o *options) { o.observer = rec })
	c := b.client(t)
	b.get(t, c, "/signup")
	b.get(t, c, "/confirm?token=abc")
	b.get(t, c, "/static/style.css")
	b.get(t, c, "/no/such/page")
	b.post(t, c, "/signup", url.Values{"email": {"observer@example.com"}, "password": {"a long and unusual passphrase"}})
	want := []string{
		"GET /signup OK",
		"GET /confirm Bad Request",
		"GET /static/* OK",
		"GET unmatched Not Found",
		"POST /signup See Other",
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.seen) != len(want) {
		t.Fatalf("observed %q, want %q", rec.seen, want)
	}
	for i := range want {
		if rec.seen[i] != want[i] {
			t.Errorf("request %d observed as %q, want %q", i, rec.seen[i], want[i])
		}
	}
}
