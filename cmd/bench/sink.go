package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// sink is a lean SMTP peer for the drain row: it accepts every message
// and counts it, without parsing (devmail's MIME parsing took 63% of a
// core in that row, so the ratio measured the sink as much as the
// sender). It keeps the first message's bytes, from which the baselines'
// messages are built.
type sink struct {
	srv      *smtp.Server
	ln       net.Listener
	received atomic.Int64
	changed  chan struct{} // signalled (without blocking) after each message

	mu    sync.Mutex
	first []byte
}

func startSink() (*sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sink: %w", err)
	}
	s := &sink{ln: ln, changed: make(chan struct{}, 1)}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &sinkSession{s: s}, nil }))
	s.srv.Domain = "localhost"
	s.srv.ReadTimeout = time.Minute
	s.srv.WriteTimeout = time.Minute
	s.srv.MaxMessageBytes = 1 << 20
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	go s.srv.Serve(groupingListener{ln}) //nolint:errcheck // ends with close
	return s, nil
}

// groupingListener gives the sink's SMTP server connections that send
// their replies as Postfix's smtpd does: gathered in a buffer and flushed
// only when the server has read all its input and is about to wait for
// more (Postfix's VSTREAM flushes its write buffer before a read). go-smtp
// alone writes every reply at once, so a client that pipelines (RFC 2920)
// gets each of MAIL's, RCPT's and DATA's replies in a packet of its own,
// where a real MTA answers the group in one. A client that waits for each
// reply before its next command, as go-mail does, gets the same packets
// either way.
type groupingListener struct{ net.Listener }

func (l groupingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &groupingConn{Conn: c}, nil
}

// groupingConn holds what the server writes until it next reads or closes.
// The lock is for Close, which the server's own Close calls from another
// goroutine.
type groupingConn struct {
	net.Conn
	mu  sync.Mutex
	out []byte
}

func (c *groupingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.out = append(c.out, p...)
	c.mu.Unlock()
	return len(p), nil
}

func (c *groupingConn) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.out) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.out)
	c.out = c.out[:0]
	return err
}

func (c *groupingConn) Read(p []byte) (int, error) {
	if err := c.flush(); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *groupingConn) Close() error {
	ferr := c.flush()
	if err := c.Conn.Close(); err != nil {
		return err
	}
	return ferr
}

// url is the SMTP URL the senders are given.
func (s *sink) url() string { return "smtp://" + s.ln.Addr().String() }

func (s *sink) close() { _ = s.srv.Close() }

// count is how many messages were accepted.
func (s *sink) count() int64 { return s.received.Load() }

// wait blocks until n messages have been accepted in all.
func (s *sink) wait(ctx context.Context, n int64) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	for s.count() < n {
		select {
		case <-s.changed:
		case <-ctx.Done():
			return fmt.Errorf("wait for %d emails (have %d): %w", n, s.count(), ctx.Err())
		}
	}
	return nil
}

type sinkSession struct{ s *sink }

func (*sinkSession) Reset()                               {}
func (*sinkSession) Logout() error                        { return nil }
func (*sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (*sinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (ss *sinkSession) Data(r io.Reader) error {
	s := ss.s
	s.mu.Lock()
	keep := s.first == nil
	s.mu.Unlock()
	if keep {
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		s.mu.Lock()
		if s.first == nil {
			s.first = b
		}
		s.mu.Unlock()
	} else if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	s.received.Add(1)
	select {
	case s.changed <- struct{}{}:
	default:
	}
	return nil
}

// tokenLink finds a confirmation link's token in a message's text.
var tokenLink = regexp.MustCompile(`[?&]token=([A-Za-z0-9_\-]+)`)

// sample parses the first message taken into the content the baselines
// send: its subject, text and HTML parts, and its token.
func (s *sink) sample() (sample, error) {
	s.mu.Lock()
	raw := s.first
	s.mu.Unlock()
	if raw == nil {
		return sample{}, errors.New("sink: no message yet")
	}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return sample{}, fmt.Errorf("sink: parse the first message: %w", err)
	}
	out := sample{size: len(raw)}
	if out.subject, err = new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject")); err != nil {
		return sample{}, fmt.Errorf("sink: subject: %w", err)
	}
	_, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		return sample{}, fmt.Errorf("sink: content type: %w", err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart() // decodes quoted-printable itself
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return sample{}, fmt.Errorf("sink: part: %w", err)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			return sample{}, fmt.Errorf("sink: part: %w", err)
		}
		switch ct := p.Header.Get("Content-Type"); {
		case strings.HasPrefix(ct, "text/plain"):
			out.text = string(b)
		case strings.HasPrefix(ct, "text/html"):
			out.html = string(b)
		}
	}
	if out.text == "" || out.html == "" {
		return sample{}, errors.New("sink: the first message lacks a text or an HTML part")
	}
	if m := tokenLink.FindStringSubmatch(out.text); m != nil {
		out.token = m[1]
	}
	return out, nil
}
