package devmail

import (
	"io"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// backend creates a session per connection (and again after STARTTLS).
type backend struct{ srv *Server }

func (b backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	return &session{srv: b.srv, tls: isTLS}, nil
}

// session is one SMTP conversation. go-smtp calls its methods from the
// connection's goroutine only.
type session struct {
	srv      *Server
	tls      bool
	authUser string
	from     string
	to       []string
}

var _ smtp.AuthSession = (*session)(nil)

// AuthMechanisms offers PLAIN and LOGIN; any credentials are accepted and
// authentication stays optional.
func (se *session) AuthMechanisms() []string {
	return []string{sasl.Plain, sasl.Login}
}

func (se *session) Auth(mech string) (sasl.Server, error) {
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, username, _ string) error {
			se.authUser = username
			return nil
		}), nil
	case sasl.Login:
		return &loginServer{done: func(username string) { se.authUser = username }}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	if err := se.srv.stageReply(true, ""); err != nil {
		return err
	}
	se.from = from
	se.to = nil
	return nil
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := se.srv.stageReply(false, to); err != nil {
		return err
	}
	se.to = append(se.to, to)
	return nil
}

func (se *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	se.srv.countAttempt()
	if err != nil {
		return err // ErrDataTooLarge is already an SMTP reply
	}
	return se.srv.deliver(envelope{
		from:     se.from,
		to:       se.to,
		tls:      se.tls,
		authUser: se.authUser,
	}, raw)
}

func (se *session) Reset() {
	se.from = ""
	se.to = nil
}

func (se *session) Logout() error { return nil }

type envelope struct {
	from     string
	to       []string
	tls      bool
	authUser string
}

// deliver answers a received message: it holds it while the Hang fault is
// in force, waits the injected latency, then fails it or stores it.
func (s *Server) deliver(env envelope, raw []byte) error {
	if release := s.hang(); release != nil {
		s.log.Info("devmail: holding a message without an answer (hang fault)", "from", env.from, "to", env.to)
		select {
		case <-release:
		case <-s.stopCtx.Done():
			return errShuttingDown
		}
	}
	latency, failure := s.outcome()
	if latency > 0 {
		t := time.NewTimer(latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-s.stopCtx.Done():
			return errShuttingDown
		}
	}
	if failure != nil {
		s.log.Info("devmail: message failed by injection", "from", env.from, "to", env.to, "reply", failure.Code)
		return failure
	}

	m := parseMessage(raw)
	m.From = env.from
	m.To = env.to
	m.TLS = env.tls
	m.AuthUser = env.authUser
	m = s.store(m)
	s.log.Info("devmail: message received", "id", m.ID, "from", m.From, "to", m.To, "subject", m.Subject)
	return nil
}

// loginServer is the server side of the LOGIN mechanism (an obsolete but
// common draft), which go-sasl no longer provides: it asks for the username
// and then the password, and accepts anything.
type loginServer struct {
	step     int
	username string
	done     func(username string)
}

func (l *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch l.step {
	case 0:
		l.step++
		if response == nil {
			return []byte("Username:"), false, nil
		}
		// The client sent the username as its initial response.
		l.username = string(response)
		l.step++
		return []byte("Password:"), false, nil
	case 1:
		l.username = string(response)
		l.step++
		return []byte("Password:"), false, nil
	case 2:
		l.step++
		l.done(l.username)
		return nil, true, nil
	}
	return nil, false, sasl.ErrUnexpectedClientResponse
}
