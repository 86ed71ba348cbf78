package http

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"signup/internal/account"
	"signup/internal/httpguard"
)

type ctxKey int

const (
	accountKey ctxKey = iota
	clientIPKey
)

// accountFrom returns the signed-in account of a request, or nil.
func accountFrom(ctx context.Context) *account.Account {
	a, _ := ctx.Value(accountKey).(*account.Account)
	return a
}

// clientIPFrom returns the client address the clientIP middleware found.
func clientIPFrom(ctx context.Context) string {
	ip, _ := ctx.Value(clientIPKey).(string)
	return ip
}

// recoverPanics turns a panic in a handler into a logged 500.
func (s *Site) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.logger.Error("panic serving request", "method", r.Method, "path", r.URL.Path,
					"panic", v, "stack", string(debug.Stack()))
				s.fail(w, r, http.StatusInternalServerError, "Something went wrong",
					"An unexpected error stopped this request. It has been logged; please try again.")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// clientIP finds the client's address: the peer, or, when the peer is a
// trusted proxy, the last address in X-Forwarded-For that is not one.
func (s *Site) clientIP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ip := peerIP(r.RemoteAddr)
		if len(s.cfg.TrustedProxies) > 0 && s.trusted(ip) {
			hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
			for i := len(hops) - 1; i >= 0; i-- {
				a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
				if err != nil {
					break
				}
				ip = a.Unmap()
				if !s.trusted(ip) {
					break
				}
			}
		}
		ctx := context.WithValue(r.Context(), clientIPKey, ip.String())
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func (s *Site) trusted(ip netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func peerIP(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.IPv4Unspecified()
	}
	return a.Unmap()
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logRequests logs one line per request, never the query string (it may
// carry a confirmation token).
func (s *Site) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		took := time.Since(start)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		route, pattern := r.URL.Path, "unmatched"
		if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
			route, pattern = rc.RoutePattern(), rc.RoutePattern()
		}
		if s.cfg.Observer != nil {
			// The pattern, never the path: paths are unbounded label values.
			s.cfg.Observer.Served(pattern, r.Method, rec.status, took)
		}
		level := slog.LevelInfo
		if rec.status >= 500 {
			level = slog.LevelWarn
		}
		s.logger.LogAttrs(r.Context(), level, "request",
			slog.String("method", r.Method), slog.String("route", route), slog.Int("status", rec.status),
			slog.Int("bytes", rec.bytes), slog.Duration("duration", took),
			slog.String("ip", clientIPFrom(r.Context())))
	})
}

// deadline bounds the request's context by RequestTimeout, not counting
// the wait for a password-hashing turn (see deadline.go): the database
// gives up when it passes, and the handler answers 503 (see serverError).
func (s *Site) deadline(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := withRequestDeadline(r.Context(), s.cfg.RequestTimeout)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// guard is the site's policy of the shared guard: a strict set of
// security headers (no scripts, no framing, no referrer: a confirmation URL
// carries a token), the body cap, and the refusal of cross-origin POSTs
// (Go's CrossOriginProtection, judged by Sec-Fetch-Site and Origin), with
// BASE_URL's origin trusted for deployments behind a proxy that rewrites
// Host. Refusals get the site's own pages.
func (s *Site) guard() (func(http.Handler) http.Handler, error) {
	hdr := httpguard.StrictHeaders()
	hdr.Set("Cross-Origin-Opener-Policy", "same-origin")
	if s.cookie.secure {
		hdr.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
	}
	g, err := httpguard.New(httpguard.Policy{
		Headers:        hdr,
		MaxBodyBytes:   s.cfg.MaxBodyBytes,
		TrustedOrigins: []string{s.cfg.BaseURL.Scheme + "://" + s.cfg.BaseURL.Host},
		TooLarge: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.fail(w, r, http.StatusRequestEntityTooLarge, "Request too large",
				"What was sent is larger than this form accepts. Nothing was changed.")
		}),
		Refused: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.logger.Info("cross-origin request refused", "method", r.Method, "path", r.URL.Path,
				"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
			s.fail(w, r, http.StatusForbidden, "Request refused",
				"This form was sent from another site, so it was refused. Nothing was changed. Open the page on this site and try again.")
		}),
	})
	if err != nil {
		return nil, err
	}
	return g.Wrap, nil
}

// session puts the signed-in account, if any, in the request's context.
func (s *Site) session(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(s.cookie.name())
		if err != nil || c.Value == "" {
			next.ServeHTTP(w, r)
			return
		}
		acct, err := s.accounts.Authenticate(r.Context(), c.Value)
		switch {
		case errors.Is(err, account.ErrNoSession):
			s.cookie.clear(w)
		case err != nil:
			s.serverError(w, r, err)
			return
		default:
			r = r.WithContext(context.WithValue(r.Context(), accountKey, &acct))
		}
		next.ServeHTTP(w, r)
	})
}

// cookieNamer knows the session cookie's name and flags: __Host- and
// Secure over https, the bare name over plain http (browsers refuse the
// prefix without Secure).
type cookieNamer struct{ secure bool }

func (c cookieNamer) name() string {
	if c.secure {
		return "__Host-session"
	}
	return "session"
}

func (c cookieNamer) set(w http.ResponseWriter, token string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name: c.name(), Value: token, Path: "/", MaxAge: int(maxAge.Seconds()),
		HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteLaxMode,
	})
}

func (c cookieNamer) clear(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: c.name(), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteLaxMode,
	})
}
