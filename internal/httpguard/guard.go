// Package httpguard is the one middleware that guards a listener: the Host
// names it answers to, security headers on every response, a cap on request
// bodies and the refusal of cross-origin writes. The site and the ops
// listener each use it with a policy of their own.
package httpguard

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
)

// Policy is what a listener enforces.
type Policy struct {
	// Hosts are the names (and IP literals) the listener answers to, taken
	// from the Host header without its port, case-insensitive; IPv6 without
	// brackets or with them. A request for any other host gets 421 and
	// nothing else: a page on a rebound DNS name cannot read or drive the
	// listener. Empty answers to every host.
	Hosts []string
	// Headers are set on every response, as given; they are copied into a
	// table once, so a response costs no allocation for them.
	Headers http.Header
	// MaxBodyBytes caps request bodies: a larger Content-Length is refused
	// at once with TooLarge, and reading past the cap fails. Zero means
	// 16 KiB.
	MaxBodyBytes int64
	// TooLarge answers a body over the cap (status 413). Default: a plain
	// 413.
	TooLarge http.Handler
	// TrustedOrigins are origins ("https://example.com") whose cross-origin
	// writes are accepted (behind a proxy that rewrites Host).
	TrustedOrigins []string
	// Refused answers a cross-origin write (status 403). Default: a plain
	// 403.
	Refused http.Handler
}

// header is one precomputed response header.
type header struct {
	key   string
	value []string
}

// Guard is a Policy ready to wrap handlers.
type Guard struct {
	hosts    map[string]bool // nil: any
	headers  []header
	max      int64
	tooLarge http.Handler
	refused  http.Handler
	cop      *http.CrossOriginProtection
}

// New checks p and returns its Guard.
func New(p Policy) (*Guard, error) {
	g := &Guard{max: p.MaxBodyBytes, tooLarge: p.TooLarge, refused: p.Refused, cop: http.NewCrossOriginProtection()}
	if g.max <= 0 {
		g.max = 16 << 10
	}
	if g.tooLarge == nil {
		g.tooLarge = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "Request Entity Too Large", http.StatusRequestEntityTooLarge)
		})
	}
	if g.refused == nil {
		g.refused = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "Forbidden: cross-origin request refused; nothing was changed", http.StatusForbidden)
		})
	}
	for _, o := range p.TrustedOrigins {
		if err := g.cop.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("httpguard: trusted origin %q: %w", o, err)
		}
	}
	if len(p.Hosts) > 0 {
		g.hosts = make(map[string]bool, len(p.Hosts))
		for _, h := range p.Hosts {
			n := normalizeHost(h)
			if n == "" {
				return nil, errors.New("httpguard: empty host name")
			}
			g.hosts[n] = true
		}
	}
	for k, v := range p.Headers {
		if len(v) == 0 {
			continue
		}
		// One value, capacity one: a handler's Add reallocates instead of
		// writing into the shared array.
		g.headers = append(g.headers, header{key: http.CanonicalHeaderKey(k), value: []string{v[0]}[:1:1]})
	}
	return g, nil
}

// StrictHeaders are the response headers both listeners send: a content
// security policy that allows no scripts, styles and images from the
// listener itself only, forms posted only to it, and no framing; no MIME
// sniffing; no Referer. Each caller adds its own to the copy it gets.
func StrictHeaders() http.Header {
	hdr := http.Header{}
	hdr.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("X-Frame-Options", "DENY")
	return hdr
}

// normalizeHost is a Host header's name: no port, no brackets, no final
// dot, lower case.
func normalizeHost(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

// Allowed reports whether the policy answers requests for host (a Host
// header's value).
func (g *Guard) Allowed(host string) bool {
	if g.hosts == nil {
		return true
	}
	return g.hosts[normalizeHost(host)]
}

// Wrap returns next behind the guard.
func (g *Guard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.Allowed(r.Host) {
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusMisdirectedRequest)
			return
		}
		h := w.Header()
		for _, kv := range g.headers {
			h[kv.key] = kv.value
		}
		if r.ContentLength > g.max {
			h.Set("Connection", "close")
			g.tooLarge.ServeHTTP(w, r)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, g.max)
		}
		if err := g.cop.Check(r); err != nil {
			g.refused.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}
