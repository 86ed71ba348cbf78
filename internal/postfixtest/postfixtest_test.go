package postfixtest_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/smtp"
	"net/textproto"
	"os"
	"strings"
	"testing"
	"time"

	"signup/internal/postfixtest"
	"signup/internal/waitfor"
)

// send speaks SMTP to s as a client named helo would: STARTTLS with cfg
// when cfg is not nil, one message from sender to rcpt.
func send(s *postfixtest.Server, helo string, cfg *tls.Config, rcpt string) error {
	c, err := smtp.Dial(strings.TrimPrefix(s.SMTPURL(""), "smtp://"))
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello(helo); err != nil {
		return err
	}
	if cfg != nil {
		if err := c.StartTLS(cfg); err != nil {
			return err
		}
	}
	if err := c.Mail("sender@signup.example.com"); err != nil {
		return err
	}
	if err := c.Rcpt(rcpt); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte("From: sender@signup.example.com\r\nTo: " + rcpt + "\r\nSubject: test\r\n\r\nHello.\r\n")); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// code is the SMTP reply code in err, 0 when there is none.
func code(err error) int {
	var pe *textproto.Error
	if errors.As(err, &pe) {
		return pe.Code
	}
	return 0
}

func waitDelivered(t *testing.T, s *postfixtest.Server, rcpt string, n int) []postfixtest.Message {
	t.Helper()
	var got []postfixtest.Message
	waitfor.True(t, 30*time.Second, rcpt+" delivered", func() bool {
		msgs, err := s.Messages()
		if err != nil {
			t.Fatal(err)
		}
		got = got[:0]
		for _, m := range msgs {
			if m.To == rcpt {
				got = append(got, m)
			}
		}
		return len(got) >= n
	})
	return got
}

func TestPlainDelivery(t *testing.T) {
	t.Parallel()
	s := postfixtest.Start(t, postfixtest.Options{})
	rcpt := s.Addr("anyone")
	if err := send(s, "client.example.com", nil, rcpt); err != nil {
		t.Fatal(err)
	}
	msgs := waitDelivered(t, s, rcpt, 1)
	if got := msgs[0].Header.Get("Subject"); got != "test" {
		t.Errorf("subject %q", got)
	}
	// A stopped instance refuses connections; started again, it delivers.
	s.Stop(t)
	if err := send(s, "client.example.com", nil, rcpt); err == nil {
		t.Fatal("a stopped instance accepted mail")
	}
	s.Start(t)
	if err := send(s, "client.example.com", nil, rcpt); err != nil {
		t.Fatal(err)
	}
	waitDelivered(t, s, rcpt, 2)
	// A restart keeps what was delivered and takes mail again.
	s.Restart(t)
	if err := send(s, "client.example.com", nil, rcpt); err != nil {
		t.Fatal(err)
	}
	waitDelivered(t, s, rcpt, 3)
}

func TestSnakeoilIsNotVerifiable(t *testing.T) {
	t.Parallel()
	s := postfixtest.Start(t, postfixtest.Options{TLS: postfixtest.Snakeoil})
	rcpt := s.Addr("anyone")
	var unverified *tls.CertificateVerificationError
	if err := send(s, "client.example.com", &tls.Config{ServerName: "127.0.0.1"}, rcpt); !errors.As(err, &unverified) {
		t.Fatalf("STARTTLS with verification against the system roots: %v; want a verification error", err)
	}
	if err := send(s, "client.example.com", &tls.Config{InsecureSkipVerify: true}, rcpt); err != nil {
		t.Fatal(err)
	}
	msgs := waitDelivered(t, s, rcpt, 1)
	if !strings.Contains(msgs[0].Header.Get("Received"), "using TLS") {
		t.Errorf("Received does not say TLS: %q", msgs[0].Header.Get("Received"))
	}
}

func TestTestCAIsVerifiable(t *testing.T) {
	t.Parallel()
	s := postfixtest.Start(t, postfixtest.Options{TLS: postfixtest.TestCA})
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatal("CAFile holds no certificate")
	}
	rcpt := s.Addr("anyone")
	for _, name := range []string{"127.0.0.1", "localhost"} {
		if err := send(s, "client.example.com", &tls.Config{ServerName: name, RootCAs: roots}, rcpt); err != nil {
			t.Fatalf("verified as %s: %v", name, err)
		}
	}
	if err := send(s, "client.example.com", &tls.Config{ServerName: "other.example.com", RootCAs: roots}, rcpt); err == nil {
		t.Error("verified for a host name not in the certificate")
	}
	waitDelivered(t, s, rcpt, 2)
}

func TestRejectNonFQDNHelo(t *testing.T) {
	t.Parallel()
	s := postfixtest.Start(t, postfixtest.Options{RejectNonFQDNHelo: true})
	rcpt := s.Addr("anyone")
	err := send(s, "vm", nil, rcpt)
	if code(err) != 504 || !strings.Contains(err.Error(), "Helo command rejected") {
		t.Fatalf("HELO vm: %v; want 504 Helo command rejected", err)
	}
	if err := send(s, "signup.example.com", nil, rcpt); err != nil {
		t.Fatal(err)
	}
	waitDelivered(t, s, rcpt, 1)
}

func TestUnknownUser(t *testing.T) {
	t.Parallel()
	s := postfixtest.Start(t, postfixtest.Options{Mailboxes: []string{"alice"}})
	err := send(s, "client.example.com", nil, s.Addr("bob"))
	if code(err) != 550 || !strings.Contains(err.Error(), "5.1.1") {
		t.Fatalf("unknown user: %v; want 550 5.1.1", err)
	}
	if err := send(s, "client.example.com", nil, s.Addr("alice")); err != nil {
		t.Fatal(err)
	}
	waitDelivered(t, s, s.Addr("alice"), 1)
}

func TestGreylist(t *testing.T) {
	t.Parallel()
	const delay = 2 * time.Second
	s := postfixtest.Start(t, postfixtest.Options{Greylist: delay})
	rcpt := s.Addr("anyone")
	first := time.Now()
	err := send(s, "client.example.com", nil, rcpt)
	if code(err) != 450 {
		t.Fatalf("first attempt: %v; want 450 (greylisted)", err)
	}
	// Retried like a client does until the delay has passed.
	waitfor.Until(t, 30*time.Second, func() error { return send(s, "client.example.com", nil, rcpt) })
	// postgrey keeps times in whole seconds: the delay may end up to a
	// second early.
	if took := time.Since(first); took < delay-time.Second {
		t.Errorf("accepted %v after the first attempt; greylisting delay is %v", took, delay)
	}
	waitDelivered(t, s, rcpt, 1)
}
