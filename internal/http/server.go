// Package http serves the site and the ops listener: the chi router, its
// handlers and middleware, and Server, which runs an http.Server as a hosted
// service.
package http

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Server runs an http.Server as a hosted service: Start listens (so a bind
// error fails the start and ":0" picks a free port), then serves in the
// background; Stop stops accepting and drains in-flight requests.
type Server struct {
	name   string
	srv    *http.Server
	logger *slog.Logger

	mu      sync.Mutex
	ln      net.Listener
	served  chan struct{} // closed when Serve returns
	failed  chan error
	stopped bool
}

// ServerConfig configures a Server.
type ServerConfig struct {
	// Name appears in logs ("http", "ops").
	Name string
	// Addr is host:port to listen on; ":0" picks a free port.
	Addr    string
	Handler http.Handler
	Logger  *slog.Logger
	// WriteTimeout bounds a whole response (default DefaultWriteTimeout); the ops listener
	// wants it longer for pprof profiles.
	WriteTimeout time.Duration
}

// DefaultWriteTimeout is how long a whole response may take by default,
// from the end of its request's headers: a request still waiting then
// loses its connection.
const DefaultWriteTimeout = 30 * time.Second

// DefaultRequestTimeout is how long a page may wait for the database when
// its Site is given no RequestTimeout.
const DefaultRequestTimeout = 10 * time.Second

// NewServer returns a Server that is not listening yet.
func NewServer(cfg ServerConfig) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	return &Server{
		name:   cfg.Name,
		logger: cfg.Logger,
		failed: make(chan error, 1),
		srv: &http.Server{
			Addr:              cfg.Addr,
			Handler:           cfg.Handler,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       15 * time.Second,
			WriteTimeout:      cfg.WriteTimeout,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    32 << 10,
			ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
		},
	}
}

// Start listens and serves in the background.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return fmt.Errorf("%s server: already started", s.name)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.srv.Addr)
	if err != nil {
		return fmt.Errorf("%s server: listen: %w", s.name, err)
	}
	s.ln = ln
	s.served = make(chan struct{})
	s.logger.Info("listening", "server", s.name, "addr", ln.Addr().String())
	go func() {
		defer close(s.served)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.failed <- fmt.Errorf("%s server: serve: %w", s.name, err)
		}
	}()
	return nil
}

// Stop stops accepting connections and waits, until ctx ends, for requests
// in flight; then it closes what is left. Safe before Start and twice.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil || s.stopped {
		return nil
	}
	s.stopped = true
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
		err = fmt.Errorf("%s server: drain: %w", s.name, err)
	}
	<-s.served
	return err
}

// Failed reports a failure of the server after it started.
func (s *Server) Failed() <-chan error { return s.failed }

// Addr is the address the server listens on, once started.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}
