package ops

import (
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/httprate"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"signup/internal/httpguard"
)

// HandlerConfig is what the ops listener serves.
type HandlerConfig struct {
	// Gatherer is the registry /metrics serves. Required.
	Gatherer prometheus.Gatherer
	// Dashboard is the status page at /. Required.
	Dashboard *Dashboard
	// Hosts are the Host names (and IP literals) the listener answers to;
	// any other gets 421 and nothing else, so a page on a DNS name rebound
	// to this address reads nothing. Default: localhost, 127.0.0.1, ::1.
	Hosts []string
	// Token, when set, is required by every route but /metrics (and the
	// sign-in form and style sheet): as "Authorization: Bearer <token>", or
	// through the sign-in form, which sets an HttpOnly, SameSite=Strict
	// cookie for the dashboard.
	Token string
	// MetricsAuth makes /metrics require Token too.
	MetricsAuth bool
	// MaxBodyBytes caps request bodies (default 16 KiB).
	MaxBodyBytes int64
	// Now is the clock of sign-in sessions. Default time.Now.
	Now func() time.Time
	// Logger receives refused requests and metric errors. Default discards.
	Logger *slog.Logger
}

// DefaultHosts are the Host names the ops listener answers to besides the
// host of its address.
var DefaultHosts = []string{"localhost", "127.0.0.1", "::1"}

// NewHandler returns the ops listener's routes: /metrics, /debug/pprof/
// (never cmdline: the process's arguments may carry secrets), the
// dashboard at / and its retry form, and, with a token, /login and
// /logout. Every route is behind one guard: the Host allow-list, strict
// security headers, the body cap and the refusal of cross-origin writes.
func NewHandler(cfg HandlerConfig) (http.Handler, error) {
	if cfg.Gatherer == nil || cfg.Dashboard == nil {
		return nil, errors.New("ops: handler needs a Gatherer and a Dashboard")
	}
	if len(cfg.Hosts) == 0 {
		cfg.Hosts = DefaultHosts
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	static, err := fs.Sub(assets, "templates")
	if err != nil {
		return nil, err
	}
	css := http.FileServerFS(static)
	guard, err := newGuard(cfg)
	if err != nil {
		return nil, err
	}

	// open serves anyone the guard lets through; locked needs the token
	// when one is set.
	open := func(h http.Handler) http.Handler { return h }
	locked := open
	r := chi.NewRouter()
	r.Use(guard.Wrap)
	if cfg.Token != "" {
		login, err := template.ParseFS(assets, "templates/login.html")
		if err != nil {
			return nil, fmt.Errorf("ops: parse sign-in template: %w", err)
		}
		auth := &tokenAuth{token: []byte(cfg.Token), now: cfg.Now, log: cfg.Logger, login: login}
		locked = auth.require
		cfg.Dashboard.signOut = true
		r.Get("/login", auth.loginForm)
		// A few tries a minute per peer (the listener is reached directly,
		// never through a proxy); the token is long and random anyway.
		r.With(httprate.LimitBy(10, time.Minute, peerKey)).Post("/login", auth.signIn)
		r.Post("/logout", auth.signOut)
	}
	metricsAuth := open
	if cfg.MetricsAuth {
		metricsAuth = locked
	}
	r.Method(http.MethodGet, "/metrics", metricsAuth(promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	})))
	r.Get("/ops.css", css.ServeHTTP)

	r.Group(func(r chi.Router) {
		r.Use(locked)
		// net/http/pprof registers on http.DefaultServeMux when imported;
		// nothing here serves that mux, so its handlers are mounted by hand.
		// cmdline is not: flags may carry DATABASE_URL or SMTP_URL with
		// their passwords.
		r.HandleFunc("/debug/pprof/cmdline", http.NotFound)
		r.HandleFunc("/debug/pprof/", pprof.Index)
		r.HandleFunc("/debug/pprof/*", pprof.Index) // heap, goroutine, allocs, block, mutex, threadcreate
		r.HandleFunc("/debug/pprof/profile", pprof.Profile)
		r.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		r.HandleFunc("/debug/pprof/trace", pprof.Trace)
		r.Get("/", cfg.Dashboard.ServeHTTP)
		r.Post("/outbox/{id}/retry", cfg.Dashboard.retry)
		r.Post("/suppressions/remove", cfg.Dashboard.unsuppress)
	})
	return r, nil
}

// newGuard is the ops listener's policy of the shared guard: its Host
// names, a strict policy (no scripts at all, styles from this listener
// only, no framing, no referrer), the body cap, and cross-origin writes
// refused as the site refuses them.
func newGuard(cfg HandlerConfig) (*httpguard.Guard, error) {
	hdr := httpguard.StrictHeaders()
	hdr.Set("Cross-Origin-Resource-Policy", "same-origin")
	log := cfg.Logger
	g, err := httpguard.New(httpguard.Policy{
		Hosts:        cfg.Hosts,
		Headers:      hdr,
		MaxBodyBytes: cfg.MaxBodyBytes,
		Refused: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			log.Info("ops: cross-origin request refused", "method", r.Method, "path", r.URL.Path,
				"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
			http.Error(w, "Forbidden: cross-origin request refused; nothing was changed", http.StatusForbidden)
		}),
	})
	if err != nil {
		return nil, fmt.Errorf("ops: %w", err)
	}
	return g, nil
}

// peerKey is the sign-in limit's key: the peer's address.
func peerKey(r *http.Request) (string, error) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr, nil
	}
	return host, nil
}
