// Package devmail is an SMTP sink with a web inbox and fault injection.
//
// Tests across the project use it as the real SMTP peer, and the `make run`
// dev stack uses it as the inbox in which a developer clicks the confirmation
// link. It accepts every message (AUTH is optional and any credentials pass),
// keeps the messages in memory, parses their text and HTML parts, and can be
// told to be slow, to fail temporarily or permanently, or to refuse
// connections.
package devmail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// Config configures a Server. The zero value is usable: SMTP on a random
// local port and no web inbox.
type Config struct {
	// SMTPAddr is the SMTP listen address. Default "127.0.0.1:0" (a random
	// free port; ask SMTPAddr after Start).
	SMTPAddr string
	// HTTPAddr is the web inbox listen address; "" disables the inbox.
	// For example "127.0.0.1:0" or "localhost:8025".
	HTTPAddr string
	// Hostname is the domain the server announces in its greeting and EHLO
	// answer. Default "localhost".
	Hostname string
	// MaxMessages is how many messages are kept in memory; the oldest are
	// dropped beyond it. Default 10000.
	MaxMessages int
	// MaxMessageBytes is the largest message accepted (larger ones are
	// answered 552). Default 10 MiB.
	MaxMessageBytes int64
	// MaxRecipients is the most RCPT TO per message. Default 100.
	MaxRecipients int
	// ReadTimeout and WriteTimeout bound each SMTP command read and reply
	// write; an idle connection is closed after ReadTimeout. Default 5
	// minutes each, as RFC 5321 suggests.
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// TLS offers STARTTLS with a self-signed certificate generated at Start;
	// clients trust it through CertPool. Default off.
	TLS bool
	// ImplicitTLS makes the SMTP listener speak TLS from the first byte
	// (smtps), with the same self-signed certificate. Default off.
	ImplicitTLS bool
	// Logger receives start/stop and per-message lines; nil discards them.
	Logger *slog.Logger
}

// Defaults applied by New for zero fields.
const (
	DefaultSMTPAddr        = "127.0.0.1:0"
	DefaultHostname        = "localhost"
	DefaultMaxMessages     = 10000
	DefaultMaxMessageBytes = 10 << 20
	DefaultMaxRecipients   = 100
	DefaultTimeout         = 5 * time.Minute
)

// withDefaults fills zero fields; it is the one place defaults live.
func (c Config) withDefaults() Config {
	if c.SMTPAddr == "" {
		c.SMTPAddr = DefaultSMTPAddr
	}
	if c.Hostname == "" {
		c.Hostname = DefaultHostname
	}
	if c.MaxMessages == 0 {
		c.MaxMessages = DefaultMaxMessages
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.MaxRecipients == 0 {
		c.MaxRecipients = DefaultMaxRecipients
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = DefaultTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.MaxMessages < 0:
		return fmt.Errorf("devmail: MaxMessages must not be negative, got %d", c.MaxMessages)
	case c.MaxMessageBytes < 0:
		return fmt.Errorf("devmail: MaxMessageBytes must not be negative, got %d", c.MaxMessageBytes)
	case c.MaxRecipients < 0:
		return fmt.Errorf("devmail: MaxRecipients must not be negative, got %d", c.MaxRecipients)
	case c.ReadTimeout < 0 || c.WriteTimeout < 0:
		return errors.New("devmail: timeouts must not be negative")
	}
	return nil
}

// ErrStopped is returned by Wait and WaitAttempts once the server has been
// stopped and their condition can no longer come true.
var ErrStopped = errors.New("devmail: server stopped")

type lifecycle int

const (
	stateNew lifecycle = iota
	stateRunning
	stateStopped
)

// Server is the SMTP sink and, when configured, its web inbox. Create it
// with New, then Start it; all methods are safe for concurrent use.
type Server struct {
	cfg Config
	log *slog.Logger

	// stopCtx is cancelled by Stop so injected latencies end at once.
	stopCtx    context.Context
	cancelStop context.CancelFunc
	done       chan struct{} // closed when Stop begins; wakes waiters
	stopped    chan struct{} // closed when Stop has finished
	serving    sync.WaitGroup

	received    atomic.Int64
	attempts    atomic.Int64
	connections atomic.Int64
	reads       atomic.Int64

	mu       sync.Mutex
	state    lifecycle
	stopErr  error
	smtp     *smtp.Server
	smtpLn   net.Listener
	http     *http.Server
	smtpAddr string
	httpAddr string
	certPool *x509.CertPool
	conns    map[*trackedConn]struct{}
	messages []Message
	nextID   int
	changed  chan struct{} // closed and replaced on every change (broadcast)
	faults   Faults
	failNext int
	failCode int
	// unhang is closed when the Hang fault is lifted, releasing the
	// messages it holds; nil while no message hangs.
	unhang chan struct{}
}

// New returns a Server for cfg with defaults filled in. It does not listen
// yet; call Start.
func New(cfg Config) *Server {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg:        cfg,
		log:        cfg.Logger,
		stopCtx:    ctx,
		cancelStop: cancel,
		done:       make(chan struct{}),
		stopped:    make(chan struct{}),
		conns:      make(map[*trackedConn]struct{}),
		changed:    make(chan struct{}),
	}
}

// Start listens on the SMTP address and, if configured, the web inbox
// address, then serves both in background goroutines. A bind error is
// returned and nothing keeps running. ctx bounds only the start itself; the
// server runs until Stop. A Server can be started once.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch s.state {
	case stateRunning:
		return errors.New("devmail: already started")
	case stateStopped:
		return errors.New("devmail: start after stop; create a new Server")
	}
	if err := s.cfg.validate(); err != nil {
		return err
	}

	var tlsConfig *tls.Config
	if s.cfg.TLS || s.cfg.ImplicitTLS {
		cert, pool, err := selfSignedCert(certHosts(s.cfg))
		if err != nil {
			return fmt.Errorf("devmail: generate certificate: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		s.certPool = pool
	}

	var lc net.ListenConfig
	smtpLn, err := lc.Listen(ctx, "tcp", s.cfg.SMTPAddr)
	if err != nil {
		return fmt.Errorf("devmail: listen smtp: %w", err)
	}
	var httpLn net.Listener
	if s.cfg.HTTPAddr != "" {
		httpLn, err = lc.Listen(ctx, "tcp", s.cfg.HTTPAddr)
		if err != nil {
			smtpLn.Close()
			return fmt.Errorf("devmail: listen http: %w", err)
		}
	}

	s.smtpLn = smtpLn
	s.smtpAddr = displayAddr(smtpLn.Addr())
	s.smtp = s.newSMTPServer()
	var ln net.Listener = &guardedListener{Listener: smtpLn, srv: s}
	if s.cfg.TLS {
		s.smtp.TLSConfig = tlsConfig
	}
	if s.cfg.ImplicitTLS {
		ln = tls.NewListener(ln, tlsConfig)
	}
	s.serving.Go(func() {
		if err := s.smtp.Serve(ln); err != nil && !s.isStopping() {
			s.log.Error("devmail: smtp server failed", "err", err)
		}
	})

	if httpLn != nil {
		s.httpAddr = displayAddr(httpLn.Addr())
		s.http = &http.Server{
			Handler:           s.Handler(),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		}
		s.serving.Go(func() {
			if err := s.http.Serve(httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("devmail: inbox server failed", "err", err)
			}
		})
	}

	s.state = stateRunning
	s.log.Info("devmail started", "smtp", s.smtpURLLocked(), "inbox", s.inboxURLLocked())
	return nil
}

func (s *Server) newSMTPServer() *smtp.Server {
	srv := smtp.NewServer(backend{srv: s})
	srv.Domain = s.cfg.Hostname
	srv.MaxMessageBytes = s.cfg.MaxMessageBytes
	srv.MaxRecipients = s.cfg.MaxRecipients
	srv.ReadTimeout = s.cfg.ReadTimeout
	srv.WriteTimeout = s.cfg.WriteTimeout
	srv.AllowInsecureAuth = true
	srv.EnableSMTPUTF8 = true
	srv.ErrorLog = smtpLogger{s.log}
	return srv
}

// Stop closes the listeners and every open connection, ends injected
// latencies, and waits for the serving goroutines to finish or ctx to end.
// It is safe to call when never started and more than once; a later call
// waits for the first to finish.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	switch s.state {
	case stateNew:
		s.state = stateStopped
		s.cancelStop()
		close(s.done)
		close(s.stopped)
		s.mu.Unlock()
		return nil
	case stateStopped:
		s.mu.Unlock()
		select {
		case <-s.stopped:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.state = stateStopped
	s.cancelStop()
	close(s.done)
	conns := s.connsLocked()
	s.mu.Unlock()

	// Close the listener ourselves: go-smtp's Shutdown only closes listeners
	// its Serve has registered, and Serve may not have got that far yet. The
	// listener admits no connection once the state is stopped, so every open
	// one is in conns; closing them lets Shutdown, which waits for the
	// connection goroutines, return promptly.
	var errs []error
	if err := s.smtpLn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		errs = append(errs, fmt.Errorf("devmail: close smtp listener: %w", err))
	}
	for _, c := range conns {
		c.Close()
	}
	if err := s.smtp.Shutdown(ctx); err != nil && !errors.Is(err, net.ErrClosed) {
		errs = append(errs, fmt.Errorf("devmail: stop smtp: %w", err))
	}
	if s.http != nil {
		if err := s.http.Shutdown(ctx); err != nil {
			s.http.Close()
			errs = append(errs, fmt.Errorf("devmail: stop inbox: %w", err))
		}
	}
	served := make(chan struct{})
	go func() {
		s.serving.Wait()
		close(served)
	}()
	select {
	case <-served:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("devmail: stop: %w", ctx.Err()))
	}

	s.mu.Lock()
	s.stopErr = errors.Join(errs...)
	err := s.stopErr
	s.mu.Unlock()
	close(s.stopped)
	s.log.Info("devmail stopped")
	return err
}

func (s *Server) isStopping() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// SMTPAddr is the SMTP host:port after Start ("" before). An unspecified
// listen host (":1025") is reported as "localhost".
func (s *Server) SMTPAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.smtpAddr
}

// SMTPURL is "smtp://host:port", or "smtps://host:port" with ImplicitTLS;
// "" before Start.
func (s *Server) SMTPURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.smtpURLLocked()
}

func (s *Server) smtpURLLocked() string {
	if s.smtpAddr == "" {
		return ""
	}
	if s.cfg.ImplicitTLS {
		return "smtps://" + s.smtpAddr
	}
	return "smtp://" + s.smtpAddr
}

// InboxURL is "http://host:port" of the web inbox; "" if disabled or before
// Start.
func (s *Server) InboxURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inboxURLLocked()
}

func (s *Server) inboxURLLocked() string {
	if s.httpAddr == "" {
		return ""
	}
	return "http://" + s.httpAddr
}

// CertPool holds the self-signed certificate the server presents with TLS
// or ImplicitTLS, for clients to trust (its names are localhost, 127.0.0.1,
// ::1, Hostname and the listen host). It is nil before Start or without TLS.
func (s *Server) CertPool() *x509.CertPool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.certPool
}

// Connections is the number of SMTP connections accepted since Start, not
// counting those refused by Faults.Refuse. Tests use it to check that a
// client reuses its connection.
func (s *Server) Connections() int64 {
	return s.connections.Load()
}

// Reads is the number of reads that brought bytes from SMTP clients since
// Start. A client that pipelines its commands (RFC 2920) needs fewer per
// message than one that waits for each reply: tests use it to check that
// the mail sender does.
func (s *Server) Reads() int64 {
	return s.reads.Load()
}

// displayAddr renders a listener address for dialing: an unspecified IP
// (0.0.0.0, ::) becomes "localhost".
func displayAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// smtpLogger adapts go-smtp's printf logger, which reports unexpected
// connection errors, to slog.
type smtpLogger struct{ log *slog.Logger }

func (l smtpLogger) Printf(format string, v ...any) {
	l.log.Warn("devmail: smtp", "detail", fmt.Sprintf(format, v...))
}

func (l smtpLogger) Println(v ...any) {
	l.log.Warn("devmail: smtp", "detail", fmt.Sprint(v...))
}
