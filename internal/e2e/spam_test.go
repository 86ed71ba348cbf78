package e2e_test

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/url"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"signup/internal/e2e"
	"signup/internal/postfixtest"
	"signup/internal/waitfor"
)

// environmentRules are the SpamAssassin rules the test's setting may make
// fire, not our email: they judge the path the message took (one hop on
// 127.0.0.1, which has no reverse DNS here) rather than its headers or
// words. On this machine only ALL_TRUSTED fires (-1.0).
var environmentRules = []string{
	"ALL_TRUSTED",    // every relay is on the trusted loopback network
	"NO_RELAYS",      // no untrusted relay to judge
	"NO_RECEIVED",    // no Received header counted
	"RDNS_NONE",      // the relay's address has no reverse DNS name
	"RDNS_LOCALHOST", // the relay's reverse DNS name is localhost
}

// TestConfirmationEmailSpamScore sends the confirmation email as an
// operator would run the product (https BASE_URL, a From on its domain,
// the default SITE_NAME) through Postfix, and the "someone tried to sign
// up" email after a second signup, and scores each delivered message with
// a stock SpamAssassin (local tests only). No rule may fire on what we
// wrote (the headers we set, the subject, the text and HTML) beyond the
// ones the test's environment causes; the score and every rule hit are
// logged.
func TestConfirmationEmailSpamScore(t *testing.T) {
	t.Parallel()
	sa, err := exec.LookPath("spamassassin")
	if err != nil {
		t.Fatal("spamassassin is not installed (scripts/ensure-postfix.sh installs it)")
	}
	mx := postfixtest.Start(t, postfixtest.Options{})
	r := startWithPostfix(t, webBinary, mx, map[string]string{
		"BASE_URL":  "https://signup.example.com",
		"MAIL_FROM": "no-reply@signup.example.com",
	})
	to := mx.Addr("spamcheck")
	c := e2e.NewClient()
	c.Signup(t, r.web.URL(), to)
	r.waitDelivered(t, mailDeadline, to)
	confirmFromMail(t, r, to)
	c.Signup(t, r.web.URL(), to) // the address has an account: "someone tried to sign up"
	var msgs []postfixtest.Message
	waitfor.Until(t, mailDeadline, func() error {
		if msgs, err = mx.Messages(); err != nil || len(msgs) < 2 {
			return fmt.Errorf("%d messages delivered, want the confirmation and the signup attempt (%v)", len(msgs), err)
		}
		return nil
	})
	for _, m := range msgs {
		subject := m.Header.Get("Subject")
		from, err := mail.ParseAddress(m.Header.Get("From"))
		if err != nil || from.Name != "Signup" || from.Address != "no-reply@signup.example.com" {
			t.Errorf("From: %q (%v); want Signup <no-reply@signup.example.com>", m.Header.Get("From"), err)
		}
		if !strings.Contains(subject, "Signup") {
			t.Errorf("Subject %q does not name the site", subject)
		}
		cmd := exec.Command(sa, "-L", "-t")
		cmd.Stdin = bytes.NewReader(m.Raw)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("spamassassin: %v\n%s", err, stderr.Bytes())
		}
		score, hits := spamReport(t, out)
		t.Logf("%q: SpamAssassin score %.1f; rules hit:", subject, score)
		for _, h := range hits {
			t.Logf("  %5.1f %s", h.points, h.rule)
		}
		for _, h := range hits {
			if h.points > 0 && !slices.Contains(environmentRules, h.rule) {
				t.Errorf("%q: rule %s (%+.1f) fires on our email", subject, h.rule, h.points)
			}
		}
		if score >= 1 {
			t.Errorf("%q: score %.1f; want below 1", subject, score)
		}
	}
}

// confirmFromMail confirms to's account with the link in the delivered
// confirmation email, whichever way the site takes it (the GET that shows
// the button, then the button's POST), and waits until it is confirmed.
func confirmFromMail(t *testing.T, r *postfixRig, to string) {
	t.Helper()
	msgs, err := r.mx.Messages()
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`/confirm\?token=([A-Za-z0-9_-]{20,})`).FindStringSubmatch(textPart(t, msgs[0].Raw))
	if m == nil {
		t.Fatalf("no confirmation link in the email:\n%s", msgs[0].Raw)
	}
	res, err := e2e.NewClient().HTTP.Get(r.web.URL() + "/confirm?token=" + m[1])
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	postPage(t, r.web.URL(), "/confirm", url.Values{"token": {m[1]}})
	waitfor.Until(t, mailDeadline, func() error {
		var confirmed bool
		err := r.query(t).QueryRow(t.Context(), `SELECT confirmed_at IS NOT NULL FROM accounts WHERE email = $1`, to).Scan(&confirmed)
		if err != nil || !confirmed {
			return fmt.Errorf("%s not confirmed (%v)", to, err)
		}
		return nil
	})
}

// textPart is the decoded text/plain part of a delivered message (the
// multipart reader undoes quoted-printable).
func textPart(t *testing.T, raw []byte) string {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("read message: %v", err)
	}
	mediaType, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(mediaType, "multipart/") {
		t.Fatalf("Content-Type %q (%v); want a multipart message", m.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err != nil {
			t.Fatalf("no text/plain part: %v", err)
		}
		if ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type")); ct == "text/plain" {
			b, err := io.ReadAll(p)
			if err != nil {
				t.Fatalf("read text part: %v", err)
			}
			return string(b)
		}
	}
}

// spamHit is one rule in SpamAssassin's report.
type spamHit struct {
	rule   string
	points float64
}

// reportLine is a row of the "Content analysis details" table:
// " 1.2 RULE_NAME   description".
var reportLine = regexp.MustCompile(`^\s*(-?\d+(?:\.\d+)?)\s+([A-Z0-9_]+)\s`)

// spamReport reads the score from the X-Spam-Status header spamassassin -t
// adds, and each rule with its points from the report it appends.
func spamReport(t *testing.T, out []byte) (float64, []spamHit) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("read spamassassin's output: %v", err)
	}
	status := m.Header.Get("X-Spam-Status")
	match := regexp.MustCompile(`score=(-?[\d.]+)`).FindStringSubmatch(status)
	if match == nil {
		t.Fatalf("no score in X-Spam-Status %q", status)
	}
	score, err := strconv.ParseFloat(match[1], 64)
	if err != nil {
		t.Fatalf("X-Spam-Status score: %v", err)
	}
	_, table, ok := bytes.Cut(out, []byte("Content analysis details:"))
	if !ok {
		t.Fatalf("no report in spamassassin's output:\n%s", out)
	}
	var hits []spamHit
	for line := range strings.Lines(string(table)) {
		if sub := reportLine.FindStringSubmatch(line); sub != nil {
			p, _ := strconv.ParseFloat(sub[1], 64)
			hits = append(hits, spamHit{rule: sub[2], points: p})
		}
	}
	// Every rule in X-Spam-Status must have been read from the table.
	_, tests, _ := strings.Cut(status, "tests=")
	tests, _, _ = strings.Cut(tests, " ")
	for _, name := range strings.Split(strings.Join(strings.Fields(tests), ""), ",") {
		if name != "" && !slices.ContainsFunc(hits, func(h spamHit) bool { return h.rule == name }) {
			t.Fatalf("rule %s in X-Spam-Status is not in the report table:\n%s", name, table)
		}
	}
	return score, hits
}
