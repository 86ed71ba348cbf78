package mail_test

import (
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"signup/internal/account"
	"signup/internal/devmail"
	appmail "signup/internal/mail"
	"signup/internal/store/storetest"
	"signup/web"
)

// The account lifecycle's emails: a reset link for an account, a reset
// asked for an address without one (queued, dropped unsent), an
// email-change link to the new address and its notice to the old, and the
// goodbye of a deleted account, which outlives the account.
func TestLifecycleEmails(t *testing.T) {
	_, b := setup(t, devmail.Config{}, nil)
	base, _ := url.Parse(baseURL)
	composer, err := account.NewComposer(account.ComposerConfig{
		Templates: web.Emails, Tokens: b.db.Accounts(), BaseURL: base,
		Lifetimes: account.TokenLifetimes{Reset: 30 * time.Minute},
	})
	if err != nil {
		t.Fatal(err)
	}
	b.cfg.Composer = composer
	s := newSender(t, b.cfg)
	ctx := t.Context()
	r := b.db.Accounts()
	signup(t, b.db, "owner@example.test")
	signup(t, b.db, "leaving@example.test")
	now := time.Now()
	owner, err := r.AccountByEmail(ctx, "owner@example.test")
	if err != nil {
		t.Fatal(err)
	}
	leaving, err := r.AccountByEmail(ctx, "leaving@example.test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.db.Pool().Exec(ctx, `UPDATE outbox SET status = 'sent'`); err != nil { // the signups' confirmations
		t.Fatal(err)
	}
	var ids []int64
	queue := func(kind account.MailKind, email string) {
		t.Helper()
		id, _, err := r.QueueForAddress(ctx, kind, email, false, now, storetest.NoLimit(email))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	queue(account.MailReset, "owner@example.test")
	queue(account.MailReset, "nobody@example.test")
	change, err := r.RequestEmailChange(ctx, owner.ID, "moved@example.test", now, storetest.NoLimit("moved@example.test"))
	if err != nil || len(change) != 2 {
		t.Fatalf("email change queued %v, %v", change, err)
	}
	ids = append(ids, change...)
	goodbye, err := r.DeleteAccount(ctx, leaving.ID, now)
	if err != nil {
		t.Fatal(err)
	}
	ids = append(ids, goodbye)

	start(t, s)
	for _, id := range ids {
		b.queue.TryEnqueue(appmail.NewJob(id))
	}
	msgs := b.waitMessages(t, 4)
	got := map[string]devmail.Message{}
	for _, m := range msgs {
		got[m.To[0]+" "+m.Subject] = m
	}
	link := func(key, path string) string {
		t.Helper()
		m, ok := got[key]
		if !ok {
			t.Fatalf("no %q among %v", key, keys(got))
		}
		re := regexp.MustCompile(`^` + regexp.QuoteMeta(baseURL+path) + `\?token=[A-Za-z0-9_-]{43}$`)
		for _, l := range m.Links {
			if re.MatchString(l) {
				return l
			}
		}
		t.Fatalf("%s: no %s link in %v", key, path, m.Links)
		return ""
	}
	reset := got["owner@example.test Reset your Signup password"]
	link("owner@example.test Reset your Signup password", "/password/reset")
	if !strings.Contains(reset.Text, "within 30 minutes") {
		t.Errorf("reset email does not say RESET_TTL:\n%s", reset.Text)
	}
	link("moved@example.test Confirm your new email address for Signup", "/account/email/confirm")
	if _, ok := got["owner@example.test Your Signup email address is being changed"]; !ok {
		t.Errorf("no notice to the old address among %v", keys(got))
	}
	if _, ok := got["leaving@example.test Your Signup account was deleted"]; !ok {
		t.Errorf("no goodbye among %v", keys(got))
	}
	eventually(t, "the row for an address without an account is dropped", func() bool {
		var n int
		b.db.Pool().QueryRow(ctx, `SELECT count(*) FROM outbox WHERE id = $1`, ids[1]).Scan(&n)
		return n == 0
	})
	for _, m := range b.smtp.Messages() {
		if m.To[0] == "nobody@example.test" {
			t.Errorf("mail went to an address without an account: %q", m.Subject)
		}
	}
	var tokens, live int
	b.db.Pool().QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE expires_at <= $1) FROM tokens WHERE purpose = 'reset'`,
		now.Add(31*time.Minute)).Scan(&tokens, &live)
	if tokens != 1 || live != 1 {
		t.Errorf("reset tokens: %d, expiring within RESET_TTL: %d; want 1, 1", tokens, live)
	}
}

func keys(m map[string]devmail.Message) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
