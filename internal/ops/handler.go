package ops

import (
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/pprof"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// HandlerConfig is what the ops listener serves.
type HandlerConfig struct {
	// Gatherer is the registry /metrics serves. Required.
	Gatherer prometheus.Gatherer
	// Dashboard is the status page at /. Required.
	Dashboard *Dashboard
	// MaxBodyBytes caps request bodies (default 16 KiB).
	MaxBodyBytes int64
	// Logger receives refused requests and metric errors. Default discards.
	Logger *slog.Logger
}

// NewHandler returns the ops listener's routes: /metrics, /debug/pprof/,
// the dashboard at / and its retry form.
func NewHandler(cfg HandlerConfig) (http.Handler, error) {
	if cfg.Gatherer == nil || cfg.Dashboard == nil {
		return nil, errors.New("ops: handler needs a Gatherer and a Dashboard")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 16 << 10
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	static, err := fs.Sub(assets, "templates")
	if err != nil {
		return nil, err
	}
	css := http.FileServerFS(static)

	r := chi.NewRouter()
	r.Use(limitBody(cfg.MaxBodyBytes))
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	}))

	// net/http/pprof registers on http.DefaultServeMux when imported;
	// nothing here serves that mux, so its handlers are mounted by hand.
	r.HandleFunc("/debug/pprof/", pprof.Index)
	r.HandleFunc("/debug/pprof/*", pprof.Index) // heap, goroutine, allocs, block, mutex, threadcreate
	// Not cmdline: web takes its settings as flags too (--database-url),
	// and the command line would show their secrets. Index answers 404
	// for it, as for any unknown profile.
	r.HandleFunc("/debug/pprof/cmdline", http.NotFound)
	r.HandleFunc("/debug/pprof/profile", pprof.Profile)
	r.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	r.HandleFunc("/debug/pprof/trace", pprof.Trace)

	r.Group(func(r chi.Router) {
		r.Use(pageHeaders, crossOrigin(cfg.Logger))
		r.Get("/", cfg.Dashboard.ServeHTTP)
		r.Get("/ops.css", css.ServeHTTP)
		r.Post("/outbox/{id}/retry", cfg.Dashboard.retry)
	})
	return r, nil
}

// pageHeaders sets a strict policy on the dashboard: no scripts at all,
// styles from this listener only, no framing.
func pageHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}

// crossOrigin refuses cross-origin POSTs (Go's CrossOriginProtection,
// judged by Sec-Fetch-Site and Origin), as the site does.
func crossOrigin(log *slog.Logger) func(http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.Info("ops: cross-origin request refused", "method", r.Method, "path", r.URL.Path,
			"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
		http.Error(w, "Forbidden: cross-origin request refused; nothing was changed", http.StatusForbidden)
	}))
	return cop.Handler
}

// limitBody refuses bodies over n bytes.
func limitBody(n int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > n {
				w.Header().Set("Connection", "close")
				http.Error(w, "Request Entity Too Large", http.StatusRequestEntityTooLarge)
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, n)
			next.ServeHTTP(w, r)
		})
	}
}
