package devmail

import (
	"context"
	"crypto/tls"
	"net"
	"strconv"
	"testing"
	"time"

	gomail "github.com/wneessen/go-mail"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testTimeout bounds every wait in the tests; they never sleep.
const testTimeout = 15 * time.Second

// setup starts a server on random local ports (web inbox included) and
// stops it when the test ends.
func setup(t *testing.T, cfg Config) *Server {
	t.Helper()
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = "127.0.0.1:0"
	}
	srv := New(cfg)
	if err := srv.Start(t.Context()); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := srv.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return srv
}

// testContext is the test's context bounded by testTimeout.
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// newClient returns a go-mail client for srv, without TLS unless opts say
// otherwise.
func newClient(t *testing.T, srv *Server, opts ...gomail.Option) *gomail.Client {
	t.Helper()
	host, portStr, err := net.SplitHostPort(srv.SMTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		t.Fatal(err)
	}
	base := []gomail.Option{
		gomail.WithPort(port),
		gomail.WithTLSPolicy(gomail.NoTLS),
		gomail.WithTimeout(testTimeout),
	}
	c, err := gomail.NewClient(host, append(base, opts...)...)
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	return c
}

// newMsg builds a multipart/alternative message with a text and an HTML part.
func newMsg(t *testing.T, to, subject, text, html string) *gomail.Msg {
	t.Helper()
	m := gomail.NewMsg()
	if err := m.From("Signup App <app@example.test>"); err != nil {
		t.Fatal(err)
	}
	if err := m.To(to); err != nil {
		t.Fatal(err)
	}
	m.Subject(subject)
	m.SetBodyString(gomail.TypeTextPlain, text)
	if html != "" {
		m.AddAlternativeString(gomail.TypeTextHTML, html)
	}
	return m
}

// send dials, sends msgs over one connection and closes.
func send(t *testing.T, srv *Server, msgs ...*gomail.Msg) error {
	t.Helper()
	return newClient(t, srv).DialAndSendWithContext(testContext(t), msgs...)
}

// trustingTLS is a client TLS config that trusts srv's certificate.
func trustingTLS(srv *Server) *tls.Config {
	return &tls.Config{RootCAs: srv.CertPool(), ServerName: "localhost", MinVersion: tls.VersionTLS12}
}
