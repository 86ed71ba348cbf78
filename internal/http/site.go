package http

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"time"

	"github.com/go-chi/chi/v5"

	"signup/internal/account"
	"signup/internal/store"
	"signup/web"
)

// SiteConfig is what the site needs.
type SiteConfig struct {
	// Accounts runs signup, confirmation and sign-in.
	Accounts *account.Service
	// Ready answers GET /readyz: 503 when the app should get no traffic
	// (starting, stopping, the database unreachable, a service it depends
	// on unhealthy), with a JSON body on Accept: application/json. Nil
	// answers 200 "ready".
	Ready http.Handler
	// Live answers GET /livez: 503 only when the process is wedged and
	// should be restarted. Nil answers 200 "live".
	Live http.Handler
	// BaseURL is the public URL; https makes cookies Secure and __Host-.
	BaseURL *url.URL
	// SiteName is the product's name (SITE_NAME) in every page's title and
	// header. Default "Signup".
	SiteName string
	// RateLimit allows Limit POSTs per Period per client IP and route, and
	// per address; Limit 0 turns rate limits off.
	RateLimit int
	// RatePeriod is the window of RateLimit.
	RatePeriod time.Duration
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// MaxBodyBytes caps request bodies (default 16 KiB).
	MaxBodyBytes int64
	// RequestTimeout bounds what one request waits for: the database, a
	// password-hashing slot. Past it the work is abandoned and the page
	// answers 503 with Retry-After, so a slow database or an overloaded
	// machine sheds requests instead of piling them up. Default 10s.
	RequestTimeout time.Duration
	// LinkLifetimes say how long emailed links work, for the pages that
	// tell.
	LinkLifetimes account.TokenLifetimes
	// Observer, when set, hears of every request served, for metrics.
	Observer RequestObserver
	Logger   *slog.Logger
}

// RequestObserver hears of requests served, for metrics. Served must not
// block.
type RequestObserver interface {
	// Served is called after each request with its route pattern ("/signup",
	// "/static/*"; "unmatched" when no route matched), method, status and
	// how long it took.
	Served(route, method string, status int, took time.Duration)
}

// Site is the web application's handler.
type Site struct {
	cfg      SiteConfig
	accounts *account.Service
	logger   *slog.Logger
	tmpl     templates
	blank    map[string][]byte // each template rendered with a blank page
	cookie   cookieNamer
	limits   *limits
	handler  http.Handler
}

// NewSite parses the templates and builds the router.
func NewSite(cfg SiteConfig) (*Site, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 16 << 10
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	cfg.LinkLifetimes = cfg.LinkLifetimes.WithDefaults()
	if cfg.BaseURL == nil {
		cfg.BaseURL = &url.URL{Scheme: "http", Host: "localhost:8080"}
	}
	if cfg.SiteName == "" {
		cfg.SiteName = "Signup"
	}
	tmpl, err := parseTemplates(cfg.SiteName)
	if err != nil {
		return nil, fmt.Errorf("site: %w", err)
	}
	blank, err := renderBlank(tmpl, page{Lifetimes: cfg.LinkLifetimes})
	if err != nil {
		return nil, fmt.Errorf("site: %w", err)
	}
	s := &Site{
		cfg:      cfg,
		accounts: cfg.Accounts,
		logger:   cfg.Logger,
		tmpl:     tmpl,
		blank:    blank,
		cookie:   cookieNamer{secure: cfg.BaseURL.Scheme == "https"},
	}
	s.limits = newLimits(cfg.RateLimit, cfg.RatePeriod, s.tooMany)
	guard, err := s.guard()
	if err != nil {
		return nil, fmt.Errorf("site: %w", err)
	}
	s.handler = s.routes(guard)
	return s, nil
}

// ServeHTTP serves the site.
func (s *Site) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// routes is the whole URL surface of the site.
func (s *Site) routes(guard func(http.Handler) http.Handler) http.Handler {
	r := chi.NewRouter()
	r.Use(s.recoverPanics, s.clientIP, s.logRequests, guard, s.deadline)

	r.Get("/healthz", s.healthz)
	r.Method(http.MethodGet, "/readyz", probe(s.cfg.Ready, "ready"))
	r.Method(http.MethodGet, "/livez", probe(s.cfg.Live, "live"))
	static, _ := fs.Sub(web.Static, "static")
	r.Handle("/static/*", http.StripPrefix("/static/", cacheFor(24*time.Hour, http.FileServerFS(static))))

	r.Get("/favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/static/favicon.svg", http.StatusMovedPermanently)
	})

	r.Group(func(r chi.Router) {
		r.Use(s.session)
		r.Get("/", s.home)
		r.Get("/signup", s.signupForm)
		r.With(s.limits.perIP("signup")).Post("/signup", s.signup)
		r.Get("/signup/sent", s.signupSent)
		r.Get("/confirm", s.confirmPage)
		r.With(s.limits.perIP("confirm")).Post("/confirm", s.confirm)
		r.Get("/confirm/resend", s.resendForm)
		r.With(s.limits.perIP("resend")).Post("/confirm/resend", s.resend)
		r.Get("/login", s.loginForm)
		r.With(s.limits.perIP("login")).Post("/login", s.login)
		r.Post("/logout", s.logout)
		r.Get("/password/forgot", s.forgotForm)
		r.With(s.limits.perIP("forgot")).Post("/password/forgot", s.forgot)
		r.Get("/password/reset", s.resetForm)
		r.With(s.limits.perIP("reset")).Post("/password/reset", s.reset)
		r.Get("/account/email/confirm", s.emailConfirmPage)
		r.With(s.limits.perIP("email-confirm")).Post("/account/email/confirm", s.emailConfirm)
		r.Group(func(r chi.Router) {
			r.Use(s.requireAccount, s.limits.perIP("account"))
			r.Post("/account/password", s.changePassword)
			r.Post("/account/email", s.changeEmail)
			r.Post("/account/sessions/revoke-others", s.revokeOthers)
			r.Post("/account/sessions/{id}/revoke", s.revokeSession)
			r.Post("/account/delete", s.deleteAccount)
		})
	})
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, http.StatusNotFound, "Page not found", "There is no page at this address.")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, r, http.StatusMethodNotAllowed, "Method not allowed", "This page cannot be used that way.")
	})
	return r
}

func (s *Site) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintln(w, "ok")
}

// probe is h, or a handler answering 200 with word when h is nil.
func probe(h http.Handler, word string) http.Handler {
	if h != nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		fmt.Fprintln(w, word)
	})
}

func isUnavailable(err error) bool {
	return errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
}

func cacheFor(d time.Duration, h http.Handler) http.Handler {
	v := fmt.Sprintf("public, max-age=%d", int(d.Seconds()))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", v)
		h.ServeHTTP(w, r)
	})
}
