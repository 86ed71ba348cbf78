package e2e_test

import (
	"bytes"
	"net/mail"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"signup/internal/e2e"
	"signup/internal/postfixtest"
)

// environmentRules are the SpamAssassin rules the test's setting makes
// fire, not our email: they judge the path the message took (one trusted
// hop on 127.0.0.1, no DNS, no DKIM signature: signing is the operator's
// mail server's job) rather than its headers or words.
var environmentRules = []string{
	"ALL_TRUSTED",    // every relay is on the trusted loopback network
	"NO_RELAYS",      // no untrusted relay to test
	"NO_RECEIVED",    // (in case the hop is not counted)
	"RDNS_NONE",      // 127.0.0.1 has no reverse DNS in a test without network
	"RDNS_LOCALHOST", // the relay calls itself localhost
	"DKIM_ADSP_NXDOMAIN",
	"NO_DNS_FOR_FROM",
	"TXREP", // the reputation plugin's own bookkeeping
}

// TestConfirmationEmailSpamScore sends the confirmation email as an
// operator would run the product (https BASE_URL, a From on its domain)
// through Postfix and scores the delivered message with a stock
// SpamAssassin (local tests only). No rule may fire on what we wrote (the
// headers we set, the subject, the text and HTML), except the ones the
// test's environment causes; the score and every rule hit are logged.
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
	e2e.NewClient().Signup(t, r.web.URL(), to)
	r.waitDelivered(t, mailDeadline, to)
	msgs, err := mx.Messages()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sa, "-L", "-t")
	cmd.Stdin = bytes.NewReader(msgs[0].Raw)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("spamassassin: %v\n%s", err, stderr.Bytes())
	}
	score, hits := spamReport(t, out)
	t.Logf("SpamAssassin score %.1f; rules hit:", score)
	for _, h := range hits {
		t.Logf("  %5.1f %s", h.points, h.rule)
	}
	for _, h := range hits {
		if h.points > 0 && !slices.Contains(environmentRules, h.rule) {
			t.Errorf("rule %s (%+.1f) fires on the confirmation email", h.rule, h.points)
		}
	}
	if score >= 1 {
		t.Errorf("score %.1f; want below 1", score)
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
