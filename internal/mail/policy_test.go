package mail

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	gomail "github.com/wneessen/go-mail"
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

func TestPermanent(t *testing.T) {
	// SMTP reply codes live in unexported SendError fields: the 4xx and 5xx
	// cases run against devmail in sender_test.go. These are the others.
	sendErr := func(reason gomail.SendErrReason) error {
		return errors.Join(&gomail.SendError{Reason: reason}) // as Send returns it
	}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"network error while sending", sendErr(gomail.ErrSMTPDataClose), false},
		{"lost connection", sendErr(gomail.ErrConnCheck), false},
		{"unaddressable", sendErr(gomail.ErrGetRcpts), true},
		{"dial refused", &dialError{err: &net.OpError{Op: "dial", Err: errors.New("connection refused")}}, false},
		{"5xx greeting or AUTH", &dialError{err: errors.New("SMTP AUTH failed: 535 5.7.8 bad credentials")}, false},
		{"refused to build", &permanentError{errBadRecipient}, true},
		{"wrapped permanent", fmt.Errorf("x: %w", &permanentError{errBadRecipient}), true},
		{"anything else", errors.New("timeout"), false},
	} {
		if got := permanent(tc.err); got != tc.want {
			t.Errorf("%s: permanent(%v) = %v, want %v", tc.name, tc.err, got, tc.want)
		}
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		24 * time.Hour: "24 hours", 48 * time.Hour: "2 days", 168 * time.Hour: "7 days", time.Hour: "1 hour",
		90 * time.Minute: "90 minutes", time.Minute: "1 minute", 1500 * time.Millisecond: "1.5s",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
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
	if id := newMessageID("example.com"); len(id) != 26+len("@example.com") {
		t.Errorf("newMessageID = %q", id)
	}
}

func TestBuildMessageRefusesInjection(t *testing.T) {
	for _, to := range []string{
		"a@example.com\r\nBcc: b@example.com", "a@example.com\nX: y", "Eve <a@example.com>", "a@example.com, b@example.com", "not an address",
	} {
		_, err := buildMessage(envelope{to: to, date: time.Now(), messageID: "x@y"}, rendered{Subject: "s", Text: "t", HTML: "h"})
		if !errors.Is(err, errBadRecipient) {
			t.Errorf("buildMessage(to %q) = %v, want errBadRecipient", to, err)
		}
	}
}
