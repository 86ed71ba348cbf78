package e2e_test

// Mail against a real mail server: Debian's Postfix, run privately by
// each test (internal/postfixtest), and the real web binary. Each test
// sets up one thing an operator meets with a stock Postfix (STARTTLS with
// the snakeoil certificate, a private CA, a HELO check, greylisting, an
// outage, an unknown user) and waits on what the product promises.

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"signup/internal/e2e"
	"signup/internal/postfixtest"
	"signup/internal/waitfor"
)

// TestPostfixPlain is the baseline the other tests build on: a Postfix
// without STARTTLS takes the confirmation email, and it lands in the
// Maildir once, addressed to the account.
func TestPostfixPlain(t *testing.T) {
	t.Parallel()
	mx := postfixtest.Start(t, postfixtest.Options{})
	r := startWithPostfix(t, webBinary, mx, nil)
	to := mx.Addr("plain")
	e2e.NewClient().Signup(t, r.web.URL(), to)
	per := r.waitDelivered(t, mailDeadline, to)
	waitfor.Until(t, mailDeadline, func() error {
		if rows := rowsFor(r.outbox(t), to); len(rows) != 1 || rows[0].Status != "sent" {
			return fmt.Errorf("outbox rows for %s: %v; want one sent", to, rows)
		}
		return nil
	})
	if per[to] != 1 {
		t.Errorf("%s got %d messages, want 1", to, per[to])
	}
}

// TestPostfixPipelining: when the server offers PIPELINING, the sender
// sends MAIL FROM, RCPT TO and DATA in one write (devmail's read count
// shows it: TestCommandsArePipelined), and the next message's right after
// a message's final dot; when it does not, each command after the last
// one's reply. The mail is queued while Postfix is down, so that it
// drains as a backlog, several messages per connection. Postfix takes
// every email, once, either way, though it disconnects a client that
// sends out of turn what RFC 2920 forbids to pipeline
// (smtpd_forbid_unauth_pipelining: a message before DATA's 354, a
// command after DATA).
func TestPostfixPipelining(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		off  bool
	}{{"offered", false}, {"not offered", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mx := postfixtest.Start(t, postfixtest.Options{NoPipelining: tc.off})
			r := startWithPostfix(t, webBinary, mx, nil)
			mx.Stop(t)
			c := e2e.NewClient()
			var to []string
			for i := range 12 {
				to = append(to, mx.Addr(fmt.Sprintf("pipelining-%d", i)))
				c.Signup(t, r.web.URL(), to[i])
			}
			mx.Start(t)
			per := r.waitDelivered(t, 2*mailDeadline, to...)
			for _, a := range to {
				if per[a] != 1 {
					t.Errorf("%s got %d messages, want 1", a, per[a])
				}
			}
			log := mx.Log()
			if strings.Contains(log, "improper command pipelining") || strings.Contains(log, "synchronization") {
				t.Errorf("Postfix saw commands out of turn:\n%s", log)
			}
			// Each message's "client=" line names the smtpd process, one
			// per connection: some connection must have carried several.
			perConn := map[string]int{}
			for _, line := range strings.Split(log, "\n") {
				if _, rest, ok := strings.Cut(line, "postfix/smtpd["); ok && strings.Contains(line, ": client=") {
					pid, _, _ := strings.Cut(rest, "]")
					perConn[pid]++
				}
			}
			if most := slices.Max(slices.Collect(maps.Values(perConn))); most < 2 {
				t.Errorf("messages per connection %v; the backlog should have gone several to a connection", perConn)
			}
		})
	}
}

// TestPostfixTLS: the default SMTP_URL takes STARTTLS from a Postfix
// with its self-signed snakeoil certificate, encrypted and unverified;
// ?starttls=required verifies the server's certificate, host name
// included, against the private CA that SMTP_CA_FILE adds.
func TestPostfixTLS(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		tls   postfixtest.TLS
		env   func(mx *postfixtest.Server) map[string]string
		level string
	}{
		{"snakeoil", postfixtest.Snakeoil, func(*postfixtest.Server) map[string]string { return nil }, "TLS, unverified"},
		{"verified", postfixtest.TestCA, func(mx *postfixtest.Server) map[string]string {
			return map[string]string{"SMTP_URL": mx.SMTPURL("starttls=required"), "SMTP_CA_FILE": mx.CAFile}
		}, "TLS, verified"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mx := postfixtest.Start(t, postfixtest.Options{TLS: tc.tls})
			r := startWithPostfix(t, webBinary, mx, tc.env(mx))
			to := mx.Addr(tc.name)
			e2e.NewClient().Signup(t, r.web.URL(), to)
			r.waitDelivered(t, mailDeadline, to)
			msgs, err := mx.Messages()
			if err != nil {
				t.Fatal(err)
			}
			if got := msgs[0].Header.Get("Received"); !strings.Contains(got, "using TLS") {
				t.Errorf("delivered without TLS: Received: %s", got)
			}
			logMentions(t, r.web, mailDeadline, tc.level)
		})
	}
}

// TestPostfixRequiredTLSWithoutCA: with ?starttls=required and a
// certificate from a CA the process does not trust, the sender is blocked
// (the fault is the setup, not any message): no attempt is spent, no
// message fails, the ops listener says so. Restarted with SMTP_CA_FILE,
// it delivers everything.
func TestPostfixRequiredTLSWithoutCA(t *testing.T) {
	t.Parallel()
	mx := postfixtest.Start(t, postfixtest.Options{TLS: postfixtest.TestCA})
	r := startWithPostfix(t, webBinary, mx, map[string]string{
		"SMTP_URL": mx.SMTPURL("starttls=required"), "OPS_ADDR": "127.0.0.1:0",
	})
	ops := r.web.OpsURL(t)
	c := e2e.NewClient()
	var emails []string
	for i := range 3 {
		to := mx.Addr(fmt.Sprintf("untrusted%d", i))
		emails = append(emails, to)
		c.Signup(t, r.web.URL(), to)
	}
	waitfor.Until(t, mailDeadline, func() error {
		v, ok := metric(t, ops, "signup_mail_sender_blocked")
		if !ok {
			return fmt.Errorf("/metrics has no signup_mail_sender_blocked; outbox: %v", r.outbox(t))
		}
		if v != 1 {
			return fmt.Errorf("signup_mail_sender_blocked = %v, want 1; outbox: %v", v, r.outbox(t))
		}
		return nil
	})
	for _, o := range r.outbox(t) {
		if o.Status == "failed" || o.Status == "sent" || o.Status == "pending" && o.Attempts != 0 {
			t.Errorf("while blocked: %v; want pending with no attempt spent", o)
		}
	}
	if per, err := mx.Delivered(); err != nil || len(per) != 0 {
		t.Errorf("delivered while the certificate cannot be verified: %v %v", per, err)
	}

	r.web.Cmd.Process.Signal(interrupt)
	if code := r.web.Wait(t, time.Minute); code != 0 {
		t.Errorf("exit code %d", code)
	}
	r.env["SMTP_CA_FILE"] = mx.CAFile
	r.web = e2e.Start(t, webBinary, r.env)
	per := r.waitDelivered(t, mailDeadline, emails...)
	for _, e := range emails {
		if per[e] != 1 {
			t.Errorf("%s got %d messages, want 1", e, per[e])
		}
	}
	waitfor.Until(t, mailDeadline, func() error {
		for _, o := range r.outbox(t) {
			if o.Status != "sent" {
				return fmt.Errorf("%v; want every row sent", o)
			}
		}
		return nil
	})
	logMentions(t, r.web, mailDeadline, "TLS, verified")
}

// TestPostfixHeloFromBaseURL: a Postfix that rejects HELO names that are
// not fully qualified (reject_non_fqdn_helo_hostname, answered at RCPT)
// takes our mail, because the default SMTP_HELO is BASE_URL's host.
func TestPostfixHeloFromBaseURL(t *testing.T) {
	t.Parallel()
	mx := postfixtest.Start(t, postfixtest.Options{RejectNonFQDNHelo: true})
	const host = "signup.example.test"
	r := startWithPostfix(t, webBinary, mx, map[string]string{"BASE_URL": "http://" + host + ":8080"})
	to := mx.Addr("helo")
	e2e.NewClient().Signup(t, r.web.URL(), to)
	r.waitDelivered(t, mailDeadline, to)
	msgs, err := mx.Messages()
	if err != nil {
		t.Fatal(err)
	}
	// Postfix's Received header starts with the client's HELO name.
	if got := msgs[0].Header.Get("Received"); !strings.HasPrefix(got, "from "+host+" ") {
		t.Errorf("Received: %s; want the HELO %s", got, host)
	}
	if strings.Contains(mx.Log(), "Helo command rejected") {
		t.Error("Postfix rejected a HELO")
	}
}

// TestPostfixGreylisting: greylisting answers RCPT with 450 until its
// delay has passed; the message is retried on its own backoff and
// delivered exactly once, its attempts counted on the outbox row.
func TestPostfixGreylisting(t *testing.T) {
	t.Parallel()
	mx := postfixtest.Start(t, postfixtest.Options{Greylist: 3 * time.Second})
	r := startWithPostfix(t, webBinary, mx, map[string]string{"MAIL_RETRY_MIN": "1s", "MAIL_RETRY_MAX": "5s"})
	to := mx.Addr("greylisted")
	e2e.NewClient().Signup(t, r.web.URL(), to)
	r.waitDelivered(t, mailDeadline, to)
	var row outboxRow
	waitfor.Until(t, mailDeadline, func() error {
		rows := rowsFor(r.outbox(t), to)
		if len(rows) != 1 || rows[0].Status != "sent" {
			return fmt.Errorf("outbox rows for %s: %v; want one sent", to, rows)
		}
		row = rows[0]
		return nil
	})
	greylisted := strings.Count(mx.Log(), "Greylisted by the test")
	t.Logf("greylisted %d times; outbox row: %v", greylisted, row)
	if greylisted == 0 {
		t.Fatal("Postfix never greylisted the message")
	}
	// Each greylisted try is an attempt; the one that succeeded may count too.
	if row.Attempts != greylisted && row.Attempts != greylisted+1 {
		t.Errorf("%d attempts on the row after %d greylisted tries and one delivery", row.Attempts, greylisted)
	}
	per, err := mx.Delivered()
	if err != nil {
		t.Fatal(err)
	}
	if per[to] != 1 {
		t.Errorf("%s got %d messages, want exactly 1", to, per[to])
	}
}

// TestPostfixOutage: Postfix is stopped for 60 s while signups keep
// coming. The outage spends no attempts, and when Postfix is back the
// backlog drains at once: every email is delivered exactly once, the first
// within the longest probe interval (4 s, spaced start to start) of the
// restart plus twice what a delivery took just before the outage (the machine's speed, measured in
// the same run), and no row took more than 2 attempts.
func TestPostfixOutage(t *testing.T) {
	t.Parallel()
	const outage, every = 60 * time.Second, 2 * time.Second
	mx := postfixtest.Start(t, postfixtest.Options{})
	r := startWithPostfix(t, fastBinary, mx, nil)
	c := e2e.NewClient()
	// The baseline: signup to delivery on this machine, now.
	warm := mx.Addr("before-outage")
	began := time.Now()
	c.Signup(t, r.web.URL(), warm)
	r.waitDelivered(t, mailDeadline, warm)
	baseline := time.Since(began)
	mx.Stop(t)
	stopped := time.Now()
	var emails []string
	tick := time.NewTicker(every)
	for i := 0; time.Since(stopped) < outage; i++ {
		to := mx.Addr(fmt.Sprintf("outage%02d", i))
		emails = append(emails, to)
		c.Signup(t, r.web.URL(), to)
		<-tick.C // the stream of signups, one every 2 s: the outage's length
	}
	tick.Stop()
	if per, err := mx.Delivered(); err != nil || len(per) != 1 {
		t.Fatalf("delivered during the outage: %v %v", per, err)
	}
	mx.Start(t)
	restarted := time.Now()
	var first time.Duration
	waitfor.Until(t, mailDeadline, func() error {
		msgs, err := mx.Messages()
		if err != nil {
			return err
		}
		if len(msgs) < 2 {
			return fmt.Errorf("nothing delivered since Postfix came back")
		}
		first = time.Since(restarted)
		return nil
	})
	r.waitDelivered(t, 2*mailDeadline, emails...)
	last := time.Since(restarted)
	waitfor.Until(t, mailDeadline, func() error {
		for _, o := range r.outbox(t) {
			if o.Status != "sent" {
				return fmt.Errorf("%v; want every row sent", o)
			}
		}
		return nil
	})
	per, err := mx.Delivered()
	if err != nil {
		t.Fatal(err)
	}
	maxAttempts := 0
	for _, o := range r.outbox(t) {
		maxAttempts = max(maxAttempts, o.Attempts)
		if o.Attempts > 2 {
			t.Errorf("%v: more than 2 attempts for a %v outage", o, outage)
		}
	}
	for _, e := range emails {
		if per[e] != 1 {
			t.Errorf("%s got %d messages, want exactly 1", e, per[e])
		}
	}
	t.Logf("%d signups during a %v outage: first delivered %v after Postfix's restart (a delivery took %v before it), all %v after; most attempts on a row: %d",
		len(emails), outage, first.Round(time.Millisecond), baseline.Round(time.Millisecond), last.Round(time.Millisecond), maxAttempts)
	if bound := 4*time.Second + 2*baseline; first > bound {
		t.Errorf("first email delivered %v after Postfix came back; want within the 4 s probe interval plus twice the %v a delivery took before the outage (%v)",
			first, baseline.Round(time.Millisecond), bound.Round(time.Millisecond))
	}
}

// TestPostfixUnknownUser: a 5xx to RCPT (550 5.1.1, no such user) fails
// the message on its first attempt and suppresses the address: a resend
// to it sends nothing (its outbox row is suppressed) and answers the same
// page as a resend to an address nobody signed up with.
func TestPostfixUnknownUser(t *testing.T) {
	t.Parallel()
	mx := postfixtest.Start(t, postfixtest.Options{Mailboxes: []string{"known"}})
	// A short per-address cooldown, so the resend below queues mail.
	const cooldown = time.Second
	r := startWithPostfix(t, webBinary, mx, map[string]string{"MAIL_COOLDOWN": cooldown.String()})
	to := mx.Addr("nobody")
	signedUp := time.Now()
	e2e.NewClient().Signup(t, r.web.URL(), to)
	var failed outboxRow
	waitfor.Until(t, mailDeadline, func() error {
		rows := rowsFor(r.outbox(t), to)
		if len(rows) != 1 || rows[0].Status != "failed" {
			return fmt.Errorf("outbox rows for %s: %v; want one failed", to, rows)
		}
		failed = rows[0]
		return nil
	})
	if failed.Attempts != 1 {
		t.Errorf("%v; want failed after 1 attempt", failed)
	}
	rejected := func() int { return strings.Count(mx.Log(), "<"+to+">: Recipient address rejected") }
	if n := rejected(); n != 1 {
		t.Errorf("Postfix rejected %s %d times, want once", to, n)
	}

	// The cooldown is a span of time the site enforces per address: the
	// resend must come after it, or it is refused for being too soon.
	waitfor.True(t, time.Minute, "the address's mail cooldown to pass", func() bool {
		return time.Since(signedUp) > cooldown+100*time.Millisecond
	})
	// The answer names the address it was given: the pages are compared
	// with each one's address blanked out.
	other := mx.Addr("never-signed-up")
	status, page := postPage(t, r.web.URL(), "/confirm/resend", url.Values{"email": {to}})
	wantStatus, wantPage := postPage(t, r.web.URL(), "/confirm/resend", url.Values{"email": {other}})
	page, wantPage = strings.ReplaceAll(page, to, "ADDRESS"), strings.ReplaceAll(wantPage, other, "ADDRESS")
	if status != http.StatusOK || status != wantStatus || page != wantPage {
		t.Errorf("resend to a suppressed address answered %d (%d bytes); to an unknown one %d (%d bytes); want the same 200 page",
			status, len(page), wantStatus, len(wantPage))
	}
	waitfor.Until(t, mailDeadline, func() error {
		rows := rowsFor(r.outbox(t), to)
		if len(rows) != 2 || rows[1].Status != "suppressed" {
			return fmt.Errorf("outbox rows for %s: %v; want the resend's row suppressed", to, rows)
		}
		return nil
	})
	if n := rejected(); n != 1 {
		t.Errorf("Postfix saw %s %d times; a suppressed address must not be mailed again", to, n)
	}
	if per, err := mx.Delivered(); err != nil || len(per) != 0 {
		t.Errorf("delivered: %v %v", per, err)
	}
}
