package account

import (
	"strings"
	"testing"
	"time"
)

func TestEveryKindHasAnEntry(t *testing.T) {
	for _, k := range MailKinds() {
		spec, ok := mailKinds[k]
		if !ok {
			t.Errorf("%s has no entry in mailKinds", k)
			continue
		}
		if (spec.token == "") != (spec.linkPath == "") {
			t.Errorf("%s: purpose %q with link path %q", k, spec.token, spec.linkPath)
		}
		if spec.recipient == "" {
			t.Errorf("%s: no recipient", k)
		}
	}
	if len(mailKinds) != len(MailKinds()) {
		t.Errorf("%d entries for %d kinds", len(mailKinds), len(MailKinds()))
	}
	if ks := KindsWithoutAccount(); len(ks) != 1 || ks[0] != MailAccountDeleted {
		t.Errorf("kinds sent without an account: %v, want only the goodbye", ks)
	}
}

func TestMintToken(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	ttl := TokenLifetimes{Reset: 30 * time.Minute}
	tests := []struct {
		l       Letter
		purpose TokenPurpose
		expires time.Duration
		pw, to  string
	}{
		{Letter{Kind: MailConfirm, AccountID: 1, To: "a@x.com", PasswordHash: "$argon2id$h"}, PurposeConfirm, 24 * time.Hour, "$argon2id$h", ""},
		{Letter{Kind: MailConfirm, AccountID: 1, To: "a@x.com"}, PurposeConfirm, 24 * time.Hour, "", ""},
		{Letter{Kind: MailReset, AccountID: 2, To: "b@x.com", PasswordHash: "ignored"}, PurposeReset, 30 * time.Minute, "", ""},
		{Letter{Kind: MailEmailChange, AccountID: 3, To: "new@x.com"}, PurposeEmailChange, 24 * time.Hour, "", "new@x.com"},
	}
	for _, tt := range tests {
		plain, tok, ok, err := mintToken(tt.l, now, ttl)
		if err != nil || !ok {
			t.Fatalf("%s: %v, %v", tt.l.Kind, ok, err)
		}
		hash, valid := HashToken(plain)
		if !valid || string(hash) != string(tok.Hash) {
			t.Errorf("%s: the stored hash is not the token's", tt.l.Kind)
		}
		if tok.Purpose != tt.purpose || tok.AccountID != tt.l.AccountID || !tok.ExpiresAt.Equal(now.Add(tt.expires)) ||
			!tok.CreatedAt.Equal(now) || tok.PasswordHash != tt.pw || tok.Email != tt.to {
			t.Errorf("%s: token %+v", tt.l.Kind, tok)
		}
	}
	for _, k := range []MailKind{MailSignupAttempt, MailPasswordChanged, MailAccountDeleted} {
		if _, _, ok, err := mintToken(Letter{Kind: k}, now, ttl); ok || err != nil {
			t.Errorf("%s minted a token: %v, %v", k, ok, err)
		}
	}
	if _, _, _, err := mintToken(Letter{Kind: "postcard"}, now, ttl); err == nil {
		t.Error("an unknown kind minted a token")
	}
	if _, _, _, err := mintToken(Letter{Kind: MailReset}, now, ttl); err == nil {
		t.Error("a reset with no account minted a token")
	}
	if !PurposeReset.SupersedesOlder() || !PurposeEmailChange.SupersedesOlder() || PurposeConfirm.SupersedesOlder() {
		t.Error("only reset and email-change tokens supersede older ones")
	}
}

func TestLimitKey(t *testing.T) {
	for in, want := range map[string]string{
		"user@example.com":     "user@example.com",
		"  User@Example.COM ":  "user@example.com",
		"\tuser@EXAMPLE.com\n": "user@example.com",
		" not an address ":     "not an address",
		strings.Repeat("x", 3): "xxx",
	} {
		if got := LimitKey(in); got != want {
			t.Errorf("LimitKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMailTurn(t *testing.T) {
	l := MailLimits{Cooldown: time.Minute, DailyCap: 10}
	if turn := l.turn(" A@X.com", limitSignup); turn.Cooldown != 0 || turn.DailyCap != 10 || turn.Address != "a@x.com" {
		t.Errorf("a signup's confirmation: %+v, want no cooldown, the cap", turn)
	}
	if turn := l.turn("a@x.com", string(MailReset)); turn.Cooldown != time.Minute || turn.Kind != "reset" {
		t.Errorf("a reset: %+v", turn)
	}
}

func TestBrowserSummary(t *testing.T) {
	for ua, want := range map[string]string{
		"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0":                                                                  "Firefox on Linux",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1": "Safari on iPhone",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0":           "Edge on Windows",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36":                   "Chrome on macOS",
		"curl/8.5.0":         "curl",
		"":                   "Unknown browser",
		"Go-http-client/1.1": "Unknown browser",
	} {
		if got := BrowserSummary(ua); got != want {
			t.Errorf("BrowserSummary(%.40q) = %q, want %q", ua, got, want)
		}
	}
}
