package devmail

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"strings"
	"sync"
	"testing"

	gomail "github.com/wneessen/go-mail"
)

func TestGoMailMultipart(t *testing.T) {
	srv := setup(t, Config{})
	link := "http://localhost:8080/confirm?token=abc123&lang=de"
	subject := "Bitte bestätigen: Grüße ✓"
	msg := newMsg(t, "Alice@Example.test", subject,
		"Hello Alice,\r\nconfirm here: "+link+".\r\nThanks",
		`<p>Hello Alice, <a href="`+strings.ReplaceAll(link, "&", "&amp;")+`">confirm</a> — äöü</p>`)

	if err := send(t, srv, msg); err != nil {
		t.Fatalf("send: %v", err)
	}
	msgs, err := srv.Wait(testContext(t), func(m []Message) bool { return len(m) == 1 })
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	m := msgs[0]
	if m.ID != 1 || m.From != "app@example.test" || len(m.To) != 1 || m.To[0] != "Alice@Example.test" {
		t.Errorf("envelope: id %d from %q to %q", m.ID, m.From, m.To)
	}
	if m.Subject != subject {
		t.Errorf("subject = %q, want %q", m.Subject, subject)
	}
	if want := "Hello Alice,\nconfirm here: " + link + ".\nThanks"; m.Text != want {
		t.Errorf("text = %q, want %q", m.Text, want)
	}
	if !strings.Contains(m.HTML, `href="http://localhost:8080/confirm?token=abc123&amp;lang=de"`) || !strings.Contains(m.HTML, "äöü") {
		t.Errorf("html = %q", m.HTML)
	}
	if len(m.Links) != 1 || m.Links[0] != link {
		t.Errorf("links = %q, want [%q]", m.Links, link)
	}
	if m.Header.Get("Message-Id") == "" || m.Header.Get("Date") == "" {
		t.Errorf("headers lack Message-ID or Date: %v", m.Header)
	}
	if from := m.Header.Get("From"); !strings.Contains(from, "app@example.test") {
		t.Errorf("From header = %q", from)
	}
	if m.ParseError != "" || m.TLS || m.AuthUser != "" || len(m.Raw) == 0 {
		t.Errorf("parse error %q, tls %v, auth %q, raw %d bytes", m.ParseError, m.TLS, m.AuthUser, len(m.Raw))
	}
	if got := srv.MessagesTo("alice@EXAMPLE.test"); len(got) != 1 {
		t.Errorf("MessagesTo found %d messages", len(got))
	}
	if got := srv.MessagesTo("bob@example.test"); len(got) != 0 {
		t.Errorf("MessagesTo(bob) found %d messages", len(got))
	}
	if srv.Received() != 1 || srv.Attempts() != 1 {
		t.Errorf("received %d, attempts %d", srv.Received(), srv.Attempts())
	}
}

func TestNetSMTP(t *testing.T) {
	srv := setup(t, Config{})
	raw := strings.Join([]string{
		"From: Sender <sender@example.test>",
		"To: rcpt@example.test",
		"Subject: =?utf-8?q?Caf=C3=A9?= plain",
		"MIME-Version: 1.0",
		"Content-Type: text/plain; charset=utf-8",
		"Content-Transfer-Encoding: quoted-printable",
		"",
		"Caf=C3=A9 au lait, long line soft=",
		"broken.",
		"",
	}, "\r\n")
	auth := smtp.PlainAuth("", "user", "secret", "127.0.0.1")
	if err := smtp.SendMail(srv.SMTPAddr(), auth, "sender@example.test", []string{"rcpt@example.test", "cc@example.test"}, []byte(raw)); err != nil {
		t.Fatalf("send: %v", err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("got %d messages", len(msgs))
	}
	m := msgs[0]
	if m.Subject != "Café plain" || m.Text != "Café au lait, long line softbroken.\n" {
		t.Errorf("subject %q, text %q", m.Subject, m.Text)
	}
	if m.AuthUser != "user" || len(m.To) != 2 || string(m.Raw) != raw {
		t.Errorf("auth %q, to %q, raw equal %v", m.AuthUser, m.To, string(m.Raw) == raw)
	}
}

func TestAuthMechanisms(t *testing.T) {
	srv := setup(t, Config{})
	for _, auth := range []gomail.SMTPAuthType{gomail.SMTPAuthPlain, gomail.SMTPAuthLogin, gomail.SMTPAuthNoAuth} {
		c := newClient(t, srv, gomail.WithSMTPAuth(auth), gomail.WithUsername("u-"+string(auth)), gomail.WithPassword("pw"))
		if err := c.DialAndSendWithContext(testContext(t), newMsg(t, "a@example.test", string(auth), "body", "")); err != nil {
			t.Fatalf("send with %s: %v", auth, err)
		}
	}
	var users []string
	for _, m := range srv.Messages() {
		users = append(users, m.AuthUser)
	}
	if got, want := strings.Join(users, ","), "u-PLAIN,u-LOGIN,"; got != want {
		t.Errorf("auth users = %q, want %q", got, want)
	}
}

func TestManyMessagesOverOneConnection(t *testing.T) {
	srv := setup(t, Config{})
	c := newClient(t, srv)
	if err := c.DialWithContext(testContext(t)); err != nil {
		t.Fatalf("dial: %v", err)
	}
	const n = 50
	for i := range n {
		if err := c.Send(newMsg(t, fmt.Sprintf("user%d@example.test", i), fmt.Sprintf("message %d", i), "body", "<p>body</p>")); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	msgs := srv.Messages()
	if len(msgs) != n || srv.Connections() != 1 {
		t.Fatalf("got %d messages over %d connections, want %d over 1", len(msgs), srv.Connections(), n)
	}
	for i, m := range msgs {
		if m.ID != i+1 || m.Subject != fmt.Sprintf("message %d", i) || m.To[0] != fmt.Sprintf("user%d@example.test", i) {
			t.Errorf("message %d: id %d subject %q to %q", i, m.ID, m.Subject, m.To)
		}
	}
}

func TestConcurrentConnections(t *testing.T) {
	srv := setup(t, Config{})
	const workers, each = 8, 10
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			msgs := make([]*gomail.Msg, each)
			for i := range msgs {
				msgs[i] = newMsg(t, fmt.Sprintf("w%d@example.test", w), fmt.Sprintf("w%d-%d", w, i), "text", "<b>html</b>")
			}
			errs <- send(t, srv, msgs...)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := len(srv.Messages()); got != workers*each {
		t.Errorf("got %d messages, want %d", got, workers*each)
	}
	for i, m := range srv.Messages() {
		if m.ID != i+1 {
			t.Fatalf("message %d has id %d", i, m.ID)
		}
	}
}

func TestWaitReturnsOnArrival(t *testing.T) {
	srv := setup(t, Config{})
	type result struct {
		msgs []Message
		err  error
	}
	done := make(chan result, 1)
	go func() {
		msgs, err := srv.Wait(testContext(t), func(m []Message) bool {
			return len(m) > 0 && m[len(m)-1].Subject == "second"
		})
		done <- result{msgs, err}
	}()
	for _, subject := range []string{"first", "second"} {
		if err := send(t, srv, newMsg(t, "a@example.test", subject, "x", "")); err != nil {
			t.Fatal(err)
		}
	}
	r := <-done
	if r.err != nil || len(r.msgs) != 2 {
		t.Fatalf("wait: %d messages, %v", len(r.msgs), r.err)
	}
}

func TestWaitEnds(t *testing.T) {
	srv := setup(t, Config{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := srv.Wait(ctx, func(m []Message) bool { return len(m) > 0 }); !errors.Is(err, context.Canceled) {
		t.Errorf("wait with cancelled ctx: %v", err)
	}

	stopped := New(Config{})
	done := make(chan error, 1)
	go func() {
		_, err := stopped.Wait(testContext(t), func(m []Message) bool { return len(m) > 0 })
		done <- err
	}()
	if err := stopped.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrStopped) {
		t.Errorf("wait across stop: %v", err)
	}
}

func TestMaxMessagesAndReset(t *testing.T) {
	srv := setup(t, Config{MaxMessages: 3})
	for i := range 5 {
		if err := send(t, srv, newMsg(t, "a@example.test", fmt.Sprint(i), "x", "")); err != nil {
			t.Fatal(err)
		}
	}
	var ids []int
	for _, m := range srv.Messages() {
		ids = append(ids, m.ID)
	}
	if fmt.Sprint(ids) != "[3 4 5]" || srv.Received() != 5 {
		t.Errorf("ids %v, received %d", ids, srv.Received())
	}
	srv.Reset()
	if len(srv.Messages()) != 0 || srv.Received() != 5 {
		t.Errorf("after reset: %d messages, received %d", len(srv.Messages()), srv.Received())
	}
	if err := send(t, srv, newMsg(t, "a@example.test", "after", "x", "")); err != nil {
		t.Fatal(err)
	}
	if m := srv.Messages(); len(m) != 1 || m[0].ID != 6 {
		t.Errorf("after reset got %+v", m)
	}
}

func TestMessageTooLarge(t *testing.T) {
	srv := setup(t, Config{MaxMessageBytes: 2048})
	err := send(t, srv, newMsg(t, "a@example.test", "big", strings.Repeat("0123456789abcdef\r\n", 200), ""))
	var sendErr *gomail.SendError
	if !errors.As(err, &sendErr) || sendErr.ErrorCode() != 552 || sendErr.IsTemp() {
		t.Fatalf("send of a big message: %v", err)
	}
	if len(srv.Messages()) != 0 || srv.Attempts() != 1 {
		t.Errorf("stored %d, attempts %d", len(srv.Messages()), srv.Attempts())
	}
	// The connection stays usable for the next, smaller message.
	if err := send(t, srv, newMsg(t, "a@example.test", "small", "x", "")); err != nil {
		t.Fatal(err)
	}
}

func TestTooManyRecipients(t *testing.T) {
	srv := setup(t, Config{MaxRecipients: 2})
	err := smtp.SendMail(srv.SMTPAddr(), nil, "a@example.test",
		[]string{"1@example.test", "2@example.test", "3@example.test"}, []byte("Subject: x\r\n\r\nx\r\n"))
	if err == nil || !strings.HasPrefix(err.Error(), "452") {
		t.Fatalf("send to 3 recipients with a limit of 2: %v", err)
	}
}

func TestLifecycle(t *testing.T) {
	t.Run("stop without start, twice", func(t *testing.T) {
		srv := New(Config{})
		for range 2 {
			if err := srv.Stop(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		if err := srv.Start(t.Context()); err == nil {
			t.Fatal("start after stop succeeded")
		}
	})
	t.Run("stop twice, start twice", func(t *testing.T) {
		srv := New(Config{HTTPAddr: "127.0.0.1:0"})
		if err := srv.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(t.Context()); err == nil {
			t.Error("second start succeeded")
		}
		if !strings.HasPrefix(srv.SMTPURL(), "smtp://127.0.0.1:") || !strings.HasPrefix(srv.InboxURL(), "http://127.0.0.1:") {
			t.Errorf("urls %q %q", srv.SMTPURL(), srv.InboxURL())
		}
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				if err := srv.Stop(t.Context()); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if _, err := net.Dial("tcp", srv.SMTPAddr()); err == nil {
			t.Error("smtp still listening after stop")
		}
	})
	t.Run("bind errors", func(t *testing.T) {
		taken := setup(t, Config{})
		if err := New(Config{SMTPAddr: taken.SMTPAddr()}).Start(t.Context()); err == nil {
			t.Error("start on a taken smtp port succeeded")
		}
		srv := New(Config{HTTPAddr: taken.InboxURL()[len("http://"):]})
		if err := srv.Start(t.Context()); err == nil {
			t.Error("start on a taken http port succeeded")
		}
		// The smtp listener opened first was closed again: stop has
		// nothing to do and the leak check at the end stays clean.
		if err := srv.Stop(t.Context()); err != nil {
			t.Error(err)
		}
	})
	t.Run("inbox disabled", func(t *testing.T) {
		srv := New(Config{})
		if err := srv.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		defer srv.Stop(t.Context())
		if srv.InboxURL() != "" || srv.CertPool() != nil {
			t.Errorf("inbox %q, cert pool %v", srv.InboxURL(), srv.CertPool())
		}
	})
	t.Run("unspecified address shows as localhost", func(t *testing.T) {
		srv := New(Config{SMTPAddr: ":0"})
		if err := srv.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		defer srv.Stop(t.Context())
		if !strings.HasPrefix(srv.SMTPAddr(), "localhost:") {
			t.Errorf("SMTPAddr = %q", srv.SMTPAddr())
		}
	})
}
