package mail

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"signup/internal/account"
	"signup/internal/store"
)

func TestRetryDelay(t *testing.T) {
	const lo, hi = 5 * time.Second, time.Hour
	for n, ceiling := range map[int]time.Duration{
		1: 5 * time.Second, 2: 10 * time.Second, 3: 20 * time.Second, 10: 2560 * time.Second, 11: time.Hour, 40: time.Hour,
	} {
		floor := max(ceiling/2, lo)
		for range 200 {
			if d := retryDelay(n, lo, hi); d < floor || d > ceiling {
				t.Fatalf("retryDelay(%d) = %v, want within [%v, %v]", n, d, floor, ceiling)
			}
		}
	}
	if d := retryDelay(1, time.Second, time.Second); d != time.Second {
		t.Errorf("retryDelay with min = max = %v", d)
	}
}

func TestJudge(t *testing.T) {
	for _, tc := range []struct {
		st   stage
		code int
		text string
		want verdict
	}{
		{stageConnect, 0, "connection refused", blocked},
		{stageGreeting, 554, "5.3.2 no service", blocked},
		{stageGreeting, 421, "4.3.2 busy", blocked},
		{stageHello, 501, "5.5.4 bad HELO", blocked},
		{stageStartTLS, 0, "x509: certificate signed by unknown authority", blocked},
		{stageAuth, 535, "5.7.8 bad credentials", blocked},
		{stageMail, 553, "5.7.1 sender not allowed", blocked},
		{stageMail, 451, "4.3.0 try later", blocked},
		{stageRcpt, 504, "5.5.2 <vm>: Helo command rejected: need fully-qualified hostname", blocked},
		{stageRcpt, 553, "5.7.1 <no-reply@localhost>: Sender address rejected: not owned by user", blocked},
		{stageRcpt, 554, "5.7.1 <unknown[127.0.0.1]>: Client host rejected: Access denied", blocked},
		{stageRcpt, 554, "5.7.1 <a@elsewhere.test>: Relay access denied", blocked},
		{stageRcpt, 550, "5.1.1 <nobody@example.test>: Recipient address rejected: User unknown", failSuppress},
		{stageRcpt, 450, "4.2.0 <a@example.test>: Recipient address rejected: Greylisted", retry},
		{stageRcpt, 452, "4.2.2 mailbox full", retry},
		{stageRcpt, 421, "4.4.2 timeout", blocked},
		{stageRcpt, 0, "connection reset by peer", blocked},
		{stageData, 451, "4.3.0 try later", retry},
		{stageData, 554, "5.7.1 message refused", fail},
		{stageData, 0, "i/o timeout", blocked},
	} {
		if got := judge(tc.st, tc.code, tc.text); got != tc.want {
			t.Errorf("judge(%v, %d %s) = %v, want %v", tc.st, tc.code, tc.text, got, tc.want)
		}
	}
}

func TestRejectionsSpotABlanketRefusal(t *testing.T) {
	const same = "550 5.7.1 Service unavailable; client [127.0.0.1] blocked"
	for _, tc := range []struct {
		name  string
		steps [][2]string // recipient, reply ("" accepted)
		want  bool        // after the last step
	}{
		{"one rejection", [][2]string{{"a@x", same}}, false},
		{"three recipients", [][2]string{{"a@x", same}, {"b@x", same}, {"c@x", same}}, true},
		{"one recipient thrice", [][2]string{{"a@x", same}, {"A@x", same}, {"a@x", same}}, false},
		{"an acceptance between", [][2]string{{"a@x", same}, {"b@x", same}, {"d@x", ""}, {"c@x", same}}, false},
		{"different replies", [][2]string{{"a@x", "550 5.1.1 <a@x>: User unknown"}, {"b@x", "550 5.1.1 <b@x>: User unknown"}, {"c@x", "550 5.1.1 <c@x>: User unknown"}}, false},
	} {
		var r rejections
		var got bool
		for _, st := range tc.steps {
			got = r.add(st[0], st[1])
		}
		if got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestExpiredAndProbeDelay(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	if expired(now.Add(-120*time.Hour), now, 120*time.Hour) || !expired(now.Add(-120*time.Hour-time.Second), now, 120*time.Hour) {
		t.Error("expired does not cut at MaxAge")
	}
	for n := 1; n < 50; n++ {
		if d := probeDelay(n); d <= 0 || d > 5*time.Second {
			t.Fatalf("probeDelay(%d) = %v, want within (0, 5s]", n, d)
		}
	}
}

func TestMessageIDHost(t *testing.T) {
	for in, want := range map[string]string{
		"example.com": "example.com", "127.0.0.1": "[127.0.0.1]", "::1": "[::1]", "": "localhost",
	} {
		if got := messageIDHost(in); got != want {
			t.Errorf("messageIDHost(%q) = %q, want %q", in, got, want)
		}
	}
	m := store.OutboxMail{ID: 42, CreatedAt: time.Unix(1, 0)}
	if a, b := messageID(m, "example.com"), messageID(m, "example.com"); a != b || !strings.HasPrefix(a, "outbox-42.") || !strings.HasSuffix(a, "@example.com") {
		t.Errorf("messageID = %q, %q", a, b)
	}
}

func TestBuildMessageRefusesInjection(t *testing.T) {
	for _, to := range []string{
		"a@example.com\r\nBcc: b@example.com", "a@example.com\nX: y", "Eve <a@example.com>", "a@example.com, b@example.com", "not an address",
	} {
		_, err := buildMessage(envelope{to: to, date: time.Now(), messageID: "x@y"}, account.Email{Subject: "s", Text: "t", HTML: "h"})
		if !errors.Is(err, errBadRecipient) {
			t.Errorf("buildMessage(to %q) = %v, want errBadRecipient", to, err)
		}
	}
}

func TestHELOName(t *testing.T) {
	for raw, want := range map[string]string{
		"https://signup.example.com/app": "signup.example.com",
		"http://mail.example.org:8080":   "mail.example.org",
	} {
		u, _ := url.Parse(raw)
		if got := HELOName(u); got != want {
			t.Errorf("HELOName(%s) = %q, want %q", raw, got, want)
		}
	}
	// Not a domain name: the machine's name when qualified, else localhost.
	for _, raw := range []string{"http://localhost:8080", "http://127.0.0.1:8080", "http://[::1]:8080", "http://vm:8080"} {
		u, _ := url.Parse(raw)
		if got := HELOName(u); got == u.Hostname() && got != "localhost" || got == "" || validHELO(got) != nil {
			t.Errorf("HELOName(%s) = %q", raw, got)
		}
	}
	for h, ok := range map[string]bool{"mail.example.com": true, "[127.0.0.1]": true, "[IPv6:::1]": true, "a b": false, "x\r\ny": false, "": false, "[nope]": false} {
		if got := validHELO(h) == nil; got != ok {
			t.Errorf("validHELO(%q) ok = %v, want %v", h, got, ok)
		}
	}
}
