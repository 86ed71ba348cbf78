package devmail

import (
	"net/smtp"
	"strings"
	"testing"

	gomail "github.com/wneessen/go-mail"
)

func TestSTARTTLS(t *testing.T) {
	srv := setup(t, Config{TLS: true})
	if srv.CertPool() == nil {
		t.Fatal("no cert pool with TLS on")
	}

	c := newClient(t, srv,
		gomail.WithTLSPolicy(gomail.TLSMandatory),
		gomail.WithTLSConfig(trustingTLS(srv)),
		gomail.WithSMTPAuth(gomail.SMTPAuthPlain), gomail.WithUsername("tls-user"), gomail.WithPassword("pw"))
	if err := c.DialAndSendWithContext(testContext(t), newMsg(t, "a@example.test", "over tls", "x", "")); err != nil {
		t.Fatalf("send with STARTTLS: %v", err)
	}

	// Without TLS the server still accepts mail.
	if err := send(t, srv, newMsg(t, "a@example.test", "plain", "x", "")); err != nil {
		t.Fatalf("send without STARTTLS: %v", err)
	}

	// net/smtp upgrades when the server offers it.
	nc, err := smtp.Dial(srv.SMTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if ok, _ := nc.Extension("STARTTLS"); !ok {
		t.Fatal("STARTTLS not offered")
	}
	if err := nc.StartTLS(trustingTLS(srv)); err != nil {
		t.Fatalf("starttls: %v", err)
	}
	if err := nc.Quit(); err != nil {
		t.Fatal(err)
	}

	msgs := srv.Messages()
	if len(msgs) != 2 || !msgs[0].TLS || msgs[0].AuthUser != "tls-user" || msgs[1].TLS {
		t.Errorf("messages: tls %v/%v, auth %q", msgs[0].TLS, msgs[1].TLS, msgs[0].AuthUser)
	}
}

func TestSTARTTLSUntrustedCertificate(t *testing.T) {
	srv := setup(t, Config{TLS: true})
	c := newClient(t, srv, gomail.WithTLSPolicy(gomail.TLSMandatory))
	err := c.DialAndSendWithContext(testContext(t), newMsg(t, "a@example.test", "x", "x", ""))
	if err == nil {
		t.Fatal("send trusting the system roots succeeded against a self-signed certificate")
	}
	if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("error does not mention the certificate: %v", err)
	}
}

func TestNoSTARTTLSByDefault(t *testing.T) {
	srv := setup(t, Config{})
	c := newClient(t, srv, gomail.WithTLSPolicy(gomail.TLSMandatory))
	if err := c.DialAndSendWithContext(testContext(t), newMsg(t, "a@example.test", "x", "x", "")); err == nil {
		t.Fatal("mandatory TLS succeeded against a server without STARTTLS")
	}
}

func TestImplicitTLS(t *testing.T) {
	srv := setup(t, Config{ImplicitTLS: true})
	if !strings.HasPrefix(srv.SMTPURL(), "smtps://") {
		t.Errorf("SMTPURL = %q", srv.SMTPURL())
	}
	c := newClient(t, srv, gomail.WithSSL(), gomail.WithTLSConfig(trustingTLS(srv)))
	if err := c.DialAndSendWithContext(testContext(t), newMsg(t, "a@example.test", "smtps", "x", "")); err != nil {
		t.Fatalf("send over implicit TLS: %v", err)
	}
	if m := srv.Messages(); len(m) != 1 || !m[0].TLS {
		t.Errorf("messages: %+v", m)
	}
}
