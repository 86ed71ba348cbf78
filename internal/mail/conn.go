package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// quitTimeout bounds the polite QUIT when a worker closes its connection.
const quitTimeout = 2 * time.Second

// errAborted is what a dial cut short by the attempt's context returns.
var errAborted = errors.New("smtp connection aborted")

// dialError wraps a failure to open an SMTP session (connect, greeting,
// EHLO, STARTTLS, AUTH): never the message's fault, always retried.
type dialError struct{ err error }

func (e *dialError) Error() string { return "connect to smtp server: " + e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// smtpConn is one worker's SMTP connection: dialled on first use, kept
// open across messages (go-mail sends RSET after each and NOOP before the
// next), dropped after any error and dialled again on the next message.
// Only its worker calls send and close; abort may come from the attempt's
// context at any time.
type smtpConn struct {
	client *gomail.Client
	tls    *tls.Config // non-nil for implicit TLS: the dialer wraps the socket
	dials  *atomic.Int64
	open   bool // a session is established (worker only)

	mu      sync.Mutex
	raw     net.Conn // the socket of the current session, for abort and close
	attempt uint64   // the attempt an abort belongs to
	aborted bool     // the current attempt was aborted: refuse to dial
}

// newSMTPConn prepares a client for srv; it connects on the first send.
func newSMTPConn(srv SMTPServer, tlsConfig *tls.Config, timeout time.Duration, dials *atomic.Int64) (*smtpConn, error) {
	c := &smtpConn{dials: dials}
	opts := []gomail.Option{
		gomail.WithPort(srv.Port),
		gomail.WithTimeout(timeout),
		gomail.WithTLSConfig(tlsConfig),
		gomail.WithDialContextFunc(c.dial),
	}
	switch srv.TLS {
	case STARTTLSRequired:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case ImplicitTLS:
		// Our dialer speaks TLS from the first byte; go-mail must not try
		// STARTTLS on top of it.
		c.tls = tlsConfig
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	}
	if srv.Username != "" {
		// PLAIN and LOGIN only go over TLS (or to localhost): go-mail
		// refuses them on a clear connection, which fails the attempt
		// rather than leak the password.
		opts = append(opts,
			gomail.WithUsername(srv.Username), gomail.WithPassword(srv.Password),
			gomail.WithOpportunisticSMTPAuth(gomail.SMTPAuthSCRAMSHA256, gomail.SMTPAuthSCRAMSHA1,
				gomail.SMTPAuthPlain, gomail.SMTPAuthLogin))
	}
	client, err := gomail.NewClient(srv.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("smtp client: %w", err)
	}
	c.client = client
	return c, nil
}

// dial is go-mail's DialContextFunc: it connects (with TLS for smtps),
// counts the connection and remembers the socket so abort can close it.
func (c *smtpConn) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if c.tls != nil {
		tc := tls.Client(conn, c.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("tls handshake: %w", err)
		}
		conn = tc
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.aborted {
		conn.Close()
		return nil, errAborted
	}
	c.raw = conn
	c.dials.Add(1)
	return conn, nil
}

// send delivers msg, connecting first if needed, within ctx: when ctx ends
// the socket is closed, which ends whatever go-mail is waiting for. A reused
// connection the server closed meanwhile (the NOOP before the message
// fails) is replaced once, transparently: nothing of the message was sent.
func (c *smtpConn) send(ctx context.Context, msg *gomail.Msg) error {
	c.mu.Lock()
	c.attempt++
	attempt := c.attempt
	c.aborted = false
	c.mu.Unlock()
	stop := context.AfterFunc(ctx, func() { c.abort(attempt) })
	err := c.sendOnce(ctx, msg)
	if !stop() || err != nil {
		// Aborted (the socket may be closed under go-mail) or failed: start
		// the next message on a fresh connection.
		c.drop()
	}
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w (%w)", err, context.Cause(ctx))
	}
	return err
}

func (c *smtpConn) sendOnce(ctx context.Context, msg *gomail.Msg) error {
	reused := c.open
	if !c.open {
		if err := c.connect(ctx); err != nil {
			return err
		}
	}
	err := c.client.Send(msg)
	var se *gomail.SendError
	if err != nil && reused && errors.As(err, &se) && se.Reason == gomail.ErrConnCheck {
		c.drop()
		if err := c.connect(ctx); err != nil {
			return err
		}
		err = c.client.Send(msg)
	}
	return err
}

func (c *smtpConn) connect(ctx context.Context) error {
	if err := c.client.DialWithContext(ctx); err != nil {
		c.drop()
		return &dialError{err: err}
	}
	c.open = true
	return nil
}

// abort closes the socket of attempt, if it is still the current one.
func (c *smtpConn) abort(attempt uint64) {
	c.mu.Lock()
	if c.attempt != attempt {
		c.mu.Unlock()
		return
	}
	c.aborted = true
	conn := c.raw
	c.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
}

// drop closes the socket without a word to the server.
func (c *smtpConn) drop() {
	c.mu.Lock()
	conn := c.raw
	c.raw = nil
	c.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
	c.open = false
}

// close ends the session politely (QUIT), within quitTimeout.
func (c *smtpConn) close() {
	if !c.open {
		return
	}
	c.mu.Lock()
	conn := c.raw
	c.mu.Unlock()
	if conn != nil {
		conn.SetDeadline(time.Now().Add(quitTimeout))
	}
	c.client.Close() //nolint:errcheck // the socket is closed below either way
	c.drop()
}
