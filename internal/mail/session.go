package mail

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strings"
	"time"

	"github.com/wneessen/go-mail/smtp"
)

// quitTimeout bounds the polite QUIT before a connection is closed.
const quitTimeout = 2 * time.Second

// stage is the step of an SMTP conversation a reply (or a failure) came
// from: the policy judges a failure by it.
type stage int

const (
	stageConnect  stage = iota // TCP connect, and the TLS handshake of smtps
	stageGreeting              // the server's 220
	stageHello                 // EHLO (or HELO)
	stageStartTLS              // STARTTLS and its handshake
	stageAuth                  // AUTH
	stageMail                  // MAIL FROM, and RSET before it on a reused connection
	stageRcpt                  // RCPT TO
	stageData                  // DATA, the message, and the reply after its end
)

func (s stage) String() string {
	return [...]string{"connect", "greeting", "EHLO", "STARTTLS", "AUTH", "MAIL FROM", "RCPT TO", "DATA"}[s]
}

// replyError is a failed step of the conversation: its stage, and the
// server's reply when there was one (code 0 when there was none: a network
// error, a timeout, a refused certificate).
type replyError struct {
	stage stage
	code  int
	text  string
	err   error
}

func (e *replyError) Error() string {
	if e.code != 0 {
		return fmt.Sprintf("smtp %s: %d %s", e.stage, e.code, e.text)
	}
	return fmt.Sprintf("smtp %s: %v", e.stage, e.err)
}

func (e *replyError) Unwrap() error { return e.err }

// reply is the server's answer as an operator reads it: "550 5.1.1 …", or
// what went wrong when there was no answer.
func (e *replyError) reply() string {
	if e.code != 0 {
		return fmt.Sprintf("%d %s", e.code, e.text)
	}
	return e.err.Error()
}

// failedAt wraps err, from stage, with the server's reply it carries.
func failedAt(st stage, err error) *replyError {
	var re *replyError
	if errors.As(err, &re) {
		return re
	}
	e := &replyError{stage: st, err: err}
	var te *textproto.Error
	if errors.As(err, &te) {
		e.code, e.text = te.Code, strings.ReplaceAll(te.Msg, "\n", " ")
	}
	return e
}

// TLS levels a session got, as logged.
const (
	levelPlain      = "plain"
	levelUnverified = "TLS, unverified"
	levelVerified   = "TLS, verified"
)

// dialer opens sessions to one server, the same way every time.
type dialer struct {
	srv  SMTPServer
	helo string
	// verified checks the certificate against the system roots and the
	// configured CA, host name included; unverified encrypts only (the
	// opportunistic level of a URL without credentials).
	verified, unverified *tls.Config
	timeout              time.Duration
}

// session is one SMTP conversation over one connection, kept open across
// messages: RSET after a transaction that did not end, QUIT at the end. It is used by one
// goroutine; a cancelled context closes its connection.
type session struct {
	d      *dialer
	conn   net.Conn
	client *smtp.Client
	level  string
	used   bool // a mail transaction ran on it
	open   bool // the last transaction did not end: RSET before the next
	broken bool // the connection cannot be used again
	// pipelining is true when the server offers PIPELINING.
	pipelining bool
	// mailParams are what MAIL FROM adds to the address: BODY=8BITMIME
	// and SMTPUTF8 when offered.
	mailParams string
	// ahead is the recipient whose MAIL FROM, RCPT TO and DATA went out
	// after the last message's dot, their replies unread; empty if none.
	ahead string
	// msg and out are the message and its dot-stuffed form, kept for the
	// next message.
	msg bytes.Buffer
	out []byte
}

// dial connects and runs the conversation up to the point a message can
// be sent: greeting, EHLO, STARTTLS as the TLS mode asks, AUTH when the
// URL has credentials. The error is a *replyError.
func (d *dialer) dial(ctx context.Context) (*session, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	var nd net.Dialer
	conn, err := nd.DialContext(ctx, "tcp", d.srv.Addr())
	if err != nil {
		return nil, failedAt(stageConnect, err)
	}
	s := &session{d: d, conn: conn, level: levelPlain}
	stop := s.watch(ctx)
	defer stop()
	fail := func(st stage, err error) (*session, error) {
		e := failedAt(st, s.cause(ctx, err))
		s.close()
		return nil, e
	}
	if d.srv.TLS == ImplicitTLS {
		tc := tls.Client(conn, d.verified)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(stageConnect, fmt.Errorf("tls handshake: %w", err))
		}
		s.conn, s.level = tc, levelVerified
	}
	s.client, err = smtp.NewClient(s.conn, d.srv.Host)
	if err != nil {
		return fail(stageGreeting, err)
	}
	if err := s.client.Hello(d.helo); err != nil {
		return fail(stageHello, err)
	}
	if s.level == levelPlain {
		offered, _ := s.client.Extension("STARTTLS")
		switch {
		case offered && (d.srv.TLS == STARTTLSRequired || d.srv.Username != ""):
			if err := s.client.StartTLS(d.verified); err != nil {
				return fail(stageStartTLS, err)
			}
			s.level = levelVerified
		case offered:
			if err := s.client.StartTLS(d.unverified); err != nil {
				return fail(stageStartTLS, err)
			}
			s.level = levelUnverified
		case d.srv.TLS == STARTTLSRequired:
			return fail(stageStartTLS, errors.New("the server offers no STARTTLS, and SMTP_URL requires it"))
		}
	}
	if d.srv.Username != "" {
		if s.level != levelVerified {
			return fail(stageAuth, errors.New("the server offers no STARTTLS: the password is only sent over verified TLS"))
		}
		if err := s.client.Auth(d.auth(s.client)); err != nil {
			return fail(stageAuth, err)
		}
	}
	s.pipelining, _ = s.client.Extension("PIPELINING")
	if ok, _ := s.client.Extension("8BITMIME"); ok {
		s.mailParams += " BODY=8BITMIME"
	}
	if ok, _ := s.client.Extension("SMTPUTF8"); ok {
		s.mailParams += " SMTPUTF8"
	}
	return s, nil
}

// auth picks the strongest mechanism the server offers.
func (d *dialer) auth(c *smtp.Client) smtp.Auth {
	_, offered := c.Extension("AUTH")
	has := func(m string) bool { return strings.Contains(" "+strings.ToUpper(offered)+" ", " "+m+" ") }
	switch {
	case has("SCRAM-SHA-256"):
		return smtp.ScramSHA256Auth(d.srv.Username, d.srv.Password)
	case has("SCRAM-SHA-1"):
		return smtp.ScramSHA1Auth(d.srv.Username, d.srv.Password)
	case has("PLAIN"):
		return smtp.PlainAuth("", d.srv.Username, d.srv.Password, d.srv.Host, false)
	default:
		return smtp.LoginAuth(d.srv.Username, d.srv.Password, d.srv.Host, false)
	}
}

// watch closes the connection when ctx ends, and bounds every read and
// write by ctx's deadline; the returned func ends the watch.
func (s *session) watch(ctx context.Context) func() {
	if dl, ok := ctx.Deadline(); ok {
		s.conn.SetDeadline(dl) //nolint:errcheck // a closed conn fails the next step anyway
	}
	stop := context.AfterFunc(ctx, func() { s.conn.Close() })
	return func() {
		if !stop() {
			s.broken = true
		}
		s.conn.SetDeadline(time.Time{}) //nolint:errcheck // as above
	}
}

// cause adds why ctx ended to err, when it did: a closed connection says
// nothing of a shutdown.
func (s *session) cause(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		s.broken = true
		return fmt.Errorf("%w (%w)", err, context.Cause(ctx))
	}
	return err
}

// send delivers one message from the envelope sender from to the address
// to: RSET first when the last transaction did not end, then MAIL FROM,
// RCPT TO, DATA. When the server offers PIPELINING (RFC 2920) those go in
// one write and their replies are read together; and when next names the
// recipient of the message to follow, its MAIL FROM, RCPT TO and DATA go
// right after this message's final dot, in the same write, their replies
// read by the next send. A message then costs one round trip, not five.
// The end of the message, which makes the server take it, waits until
// before is recorded (nil: no wait); everything else goes ahead.
// The error is a *replyError; after it the session may still be used when
// the server answered (a rejected recipient), unless broken says otherwise.
func (s *session) send(ctx context.Context, from, to string, msg io.WriterTo, before *mark, next string) error {
	if strings.ContainsAny(from+to+next, "\r\n") {
		return &permanentError{errors.New("an envelope address contains a line break")}
	}
	ctx, cancel := context.WithTimeout(ctx, s.d.timeout)
	defer cancel()
	stop := s.watch(ctx)
	defer stop()
	step := func(st stage, err error) error {
		if err == nil {
			return nil
		}
		e := failedAt(st, s.cause(ctx, err))
		if e.code == 0 || e.code == 421 {
			s.broken = true
		}
		return e
	}
	t := s.client.Text
	var group []stage
	if s.ahead != "" {
		if s.ahead != to {
			// Not the message its envelope was sent for: the server waits
			// for a message we will not send. Nothing of this one was sent.
			s.close()
			return failedAt(stageMail, errors.New("the pipelined envelope was for another message"))
		}
		s.ahead = ""
		group = append(group, stageMail, stageRcpt, stageData)
	} else {
		cmd := func(st stage, line string) error {
			t.W.WriteString(line)   //nolint:errcheck // a bufio.Writer's error comes back from Flush
			t.W.WriteString("\r\n") //nolint:errcheck // as above
			group = append(group, st)
			if s.pipelining {
				return nil
			}
			return s.replies(ctx, &group, step)
		}
		if s.open {
			if err := cmd(stageMail, "RSET"); err != nil {
				return err
			}
		}
		s.used, s.open = true, true
		if err := cmd(stageMail, s.mailFrom(from)); err != nil {
			return err
		}
		if err := cmd(stageRcpt, "RCPT TO:<"+to+">"); err != nil {
			return err
		}
		if err := cmd(stageData, "DATA"); err != nil {
			return err
		}
	}
	if err := s.replies(ctx, &group, step); err != nil {
		return err
	}
	s.msg.Reset()
	if _, err := msg.WriteTo(&s.msg); err != nil {
		s.close()
		return step(stageData, err)
	}
	s.out = appendDotStuffed(s.out[:0], s.msg.Bytes())
	t.W.Write(s.out) //nolint:errcheck // a bufio.Writer's error comes back from Flush
	if before != nil && !isClosed(before.recorded) {
		// Send the body now, all but its final dot, and wait.
		before.need()
		if err := t.W.Flush(); err != nil {
			s.broken = true
			return step(stageData, err)
		}
		select {
		case <-before.recorded:
		case <-ctx.Done():
			s.broken = true
			return failedAt(stageData, context.Cause(ctx))
		}
	}
	t.W.WriteString(".\r\n") //nolint:errcheck // as above
	if next != "" && s.pipelining {
		// The transaction ends with the dot's reply: the next needs no RSET.
		t.W.WriteString(s.mailFrom(from) + "\r\nRCPT TO:<" + next + ">\r\nDATA\r\n") //nolint:errcheck // as above
		s.ahead = next
	}
	if err := t.W.Flush(); err != nil {
		s.broken = true
		return step(stageData, err)
	}
	_, _, err := t.ReadResponse(250)
	s.open = s.ahead != "" // the reply to the dot ends the transaction, either way
	return step(stageData, err)
}

// mailFrom is the MAIL FROM command for the envelope sender from.
func (s *session) mailFrom(from string) string {
	return "MAIL FROM:<" + from + ">" + s.mailParams
}

// appendDotStuffed appends msg to dst as DATA carries it (RFC 5321
// 4.5.2): every line ends in CRLF, and a line that starts with a dot gets
// a second one. The final dot is not added.
func appendDotStuffed(dst, msg []byte) []byte {
	for len(msg) > 0 {
		if msg[0] == '.' {
			dst = append(dst, '.')
		}
		i := bytes.IndexByte(msg, '\n')
		if i < 0 {
			return append(append(dst, msg...), '\r', '\n')
		}
		dst = append(append(dst, bytes.TrimSuffix(msg[:i], []byte{'\r'})...), '\r', '\n')
		msg = msg[i+1:]
	}
	return dst
}

// replies flushes the commands written and reads their replies, in order:
// the first failure is the error (RSET, MAIL FROM and RCPT TO expect a
// 2xx, DATA a 354). A server that takes DATA after refusing what came
// before it is waiting for a message we will not send: the connection is
// dropped.
func (s *session) replies(ctx context.Context, group *[]stage, step func(stage, error) error) error {
	t := s.client.Text
	cmds := *group
	*group = (*group)[:0]
	if err := t.W.Flush(); err != nil {
		return step(cmds[0], err)
	}
	var first error
	for _, st := range cmds {
		expect := 25
		if st == stageData {
			expect = 354
		}
		code, _, err := t.ReadResponse(expect)
		if err != nil && first == nil {
			first = step(st, err)
		}
		if s.broken {
			break // no reply to read any more
		}
		if st == stageData && code == 354 && first != nil {
			s.close()
		}
	}
	return first
}

// quit ends the conversation politely and closes the connection; without
// a word when an envelope went ahead (the server waits for its message).
func (s *session) quit() {
	if !s.broken && s.client != nil && s.ahead == "" {
		s.conn.SetDeadline(time.Now().Add(quitTimeout)) //nolint:errcheck // closed below either way
		s.client.Quit()                                 //nolint:errcheck // closed below either way
	}
	s.close()
}

// close drops the connection without a word.
func (s *session) close() {
	s.broken = true
	s.conn.Close()
}
