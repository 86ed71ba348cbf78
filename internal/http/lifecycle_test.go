package http_test

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"signup/internal/account"
)

const attackerPassword = "attacker knows this one"

// signInStatus posts the sign-in form with a fresh browser.
func (b *bundle) signInStatus(t *testing.T, email, pw string) int {
	t.Helper()
	return b.post(t, b.client(t), "/login", url.Values{"email": {email}, "password": {pw}}).status
}

// The pre-registration takeover: whoever signed up before or after, the
// link from the victim's own signup confirms the account with the victim's
// password, and a link from the attacker's signup is dead once it is.
func TestSignupTakeover(t *testing.T) {
	t.Parallel()
	for _, order := range []string{"attacker first", "attacker again after the victim"} {
		t.Run(order, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			const victim = "victim@example.com"
			attacker, person := b.client(t), b.client(t)
			if order == "attacker first" {
				b.signup(t, attacker, victim, attackerPassword)
				b.signup(t, person, victim, password)
			} else {
				b.signup(t, person, victim, password)
				b.signup(t, attacker, victim, attackerPassword)
			}
			// Each signup got its own confirmation email, in order.
			first, second := b.link(t, victim, account.MailConfirm), b.link(t, victim, account.MailConfirm)
			victimLink, attackerLink := first, second
			if order == "attacker first" {
				victimLink, attackerLink = second, first
			}
			if res := b.confirm(t, person, victimLink); res.status != http.StatusOK {
				t.Fatalf("victim confirms: %d", res.status)
			}
			if s := b.signInStatus(t, victim, password); s != http.StatusSeeOther {
				t.Errorf("victim's password: %d, want 303", s)
			}
			if s := b.signInStatus(t, victim, attackerPassword); s != http.StatusUnauthorized {
				t.Errorf("attacker's password: %d, want 401", s)
			}
			// The attacker's link, used after, changes nothing.
			res := b.get(t, attacker, "/confirm?token="+attackerLink)
			if res.status != http.StatusConflict {
				t.Errorf("attacker's link after confirmation: %d, want 409", res.status)
			}
			mustContain(t, res.body, "already confirmed")
			if res := b.post(t, attacker, "/confirm", url.Values{"token": {attackerLink}}); res.status != http.StatusConflict {
				t.Errorf("attacker's link pressed after confirmation: %d, want 409", res.status)
			}
			if s := b.signInStatus(t, victim, attackerPassword); s != http.StatusUnauthorized {
				t.Errorf("attacker's password after the attacker's link: %d, want 401", s)
			}
			if s := b.signInStatus(t, victim, password); s != http.StatusSeeOther {
				t.Errorf("victim's password after the attacker's link: %d", s)
			}
		})
	}
}

// A resend is not a signup: its link carries no password, and asks for
// one, so it cannot confirm an account with an earlier signup's password.
func TestResendLinkAsksForPassword(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.client(t)
	b.signup(t, c, "again@example.com", attackerPassword)
	b.link(t, "again@example.com", account.MailConfirm) // the signup's, lost
	if res := b.post(t, c, "/confirm/resend", url.Values{"email": {"again@example.com"}}); res.status != http.StatusOK {
		t.Fatalf("resend: %d", res.status)
	}
	tok := b.link(t, "again@example.com", account.MailConfirm)
	res := b.get(t, c, "/confirm?token="+tok)
	mustContain(t, res.body, "Confirm my address", `name="password"`)
	res = b.post(t, c, "/confirm", url.Values{"token": {tok}})
	if res.status != http.StatusBadRequest || !strings.Contains(res.body, "<title>Error: ") {
		t.Fatalf("confirm without a password: %d", res.status)
	}
	if res := b.post(t, c, "/confirm", url.Values{"token": {tok}, "password": {password}}); res.status != http.StatusOK {
		t.Fatalf("confirm with a password: %d %s", res.status, res.body)
	}
	if s := b.signInStatus(t, "again@example.com", password); s != http.StatusSeeOther {
		t.Errorf("chosen password: %d", s)
	}
	if s := b.signInStatus(t, "again@example.com", attackerPassword); s != http.StatusUnauthorized {
		t.Errorf("the signup's password: %d", s)
	}
}

// A reset sets the password, signs this browser in and every other out.
func TestResetRevokesEverySession(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const email = "reset@example.com"
	b.confirmed(t, email, password)
	laptop, phone, resetter := b.client(t), b.client(t), b.client(t)
	b.signIn(t, laptop, email, password)
	b.signIn(t, phone, email, password)

	res := b.post(t, resetter, "/password/forgot", url.Values{"email": {" Reset@example.com "}})
	if res.status != http.StatusOK {
		t.Fatalf("forgot: %d", res.status)
	}
	mustContain(t, res.body, "Check your inbox", "Reset@example.com")
	tok := b.link(t, email, account.MailReset)
	res = b.get(t, resetter, "/password/reset?token="+tok)
	if res.status != http.StatusOK {
		t.Fatalf("reset page: %d", res.status)
	}
	mustContain(t, res.body, "<title>Choose a new password", `name="token"`, `name="password"`)
	const newPassword = "a brand new passphrase"
	res = b.post(t, resetter, "/password/reset", url.Values{"token": {tok}, "password": {"short"}})
	if res.status != http.StatusBadRequest || !strings.Contains(res.body, "<title>Error: Choose a new password") {
		t.Fatalf("short password: %d", res.status)
	}
	res = b.post(t, resetter, "/password/reset", url.Values{"token": {tok}, "password": {newPassword}})
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/" {
		t.Fatalf("reset: %d %s", res.status, res.body)
	}
	mustContain(t, b.get(t, resetter, "/").body, "Your account", "Your new password is set")
	for name, c := range map[string]*http.Client{"laptop": laptop, "phone": phone} {
		if body := b.get(t, c, "/").body; strings.Contains(body, email) {
			t.Errorf("%s still signed in after the reset", name)
		}
	}
	if s := b.signInStatus(t, email, password); s != http.StatusUnauthorized {
		t.Errorf("old password: %d", s)
	}
	if s := b.signInStatus(t, email, newPassword); s != http.StatusSeeOther {
		t.Errorf("new password: %d", s)
	}
	if n := b.count(t, `SELECT count(*) FROM outbox WHERE kind = 'password_changed'`); n != 1 {
		t.Errorf("password-changed notices: %d", n)
	}
	if res := b.post(t, resetter, "/password/reset", url.Values{"token": {tok}, "password": {"yet another passphrase"}}); res.status != http.StatusConflict {
		t.Errorf("second use: %d", res.status)
	}
}

func TestResetLinks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.client(t)
	// An unconfirmed account: the reset link proves the mailbox.
	b.signup(t, c, "late@example.com", attackerPassword)
	forgot := func() string {
		t.Helper()
		if res := b.post(t, c, "/password/forgot", url.Values{"email": {"late@example.com"}}); res.status != http.StatusOK {
			t.Fatalf("forgot: %d", res.status)
		}
		return b.link(t, "late@example.com", account.MailReset)
	}
	older := forgot()
	b.clock.Add(2 * time.Minute) // past the cooldown
	newer := forgot()
	res := b.get(t, c, "/password/reset?token="+older)
	if res.status != http.StatusGone {
		t.Errorf("superseded link: %d", res.status)
	}
	mustContain(t, res.body, "A newer link was sent", `action="/password/forgot"`)
	if res := b.post(t, c, "/password/reset", url.Values{"token": {newer}, "password": {password}}); res.status != http.StatusSeeOther {
		t.Fatalf("reset: %d", res.status)
	}
	if n := b.count(t, `SELECT count(*) FROM accounts WHERE confirmed_at IS NOT NULL`); n != 1 {
		t.Error("the reset did not confirm the account")
	}
	// Expired, after RESET_TTL (1h).
	b.clock.Add(2 * time.Minute)
	expiring := forgot()
	b.clock.Add(time.Hour)
	res = b.get(t, c, "/password/reset?token="+expiring)
	if res.status != http.StatusGone {
		t.Errorf("expired link: %d", res.status)
	}
	mustContain(t, res.body, "This link has expired", `action="/password/forgot"`, `value="late@example.com"`)
}

// An email change: the old address stays until the new one is confirmed,
// and is told.
func TestEmailChange(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const old, next = "old@example.com", "new@example.com"
	b.confirmed(t, old, password)
	c := b.client(t)
	b.signIn(t, c, old, password)

	res := b.post(t, c, "/account/email", url.Values{"current_password": {"wrong password!"}, "email": {next}})
	if res.status != http.StatusBadRequest || !strings.Contains(res.body, "<title>Error: Your account") {
		t.Fatalf("wrong current password: %d", res.status)
	}
	mustContain(t, res.body, "not your current password", `value="new@example.com"`)
	res = b.post(t, c, "/account/email", url.Values{"current_password": {password}, "email": {next}})
	if res.status != http.StatusSeeOther {
		t.Fatalf("change email: %d %s", res.status, res.body)
	}
	mustContain(t, b.get(t, c, "/").body, "We sent a link to new@example.com", `id="account-email">old@example.com<`)
	if n := b.count(t, `SELECT count(*) FROM outbox WHERE kind = 'email_change_notice' AND recipient = $1`, old); n != 1 {
		t.Errorf("notices to the old address: %d", n)
	}
	if s := b.signInStatus(t, old, password); s != http.StatusSeeOther {
		t.Errorf("old address before the link: %d", s)
	}
	tok := b.link(t, next, account.MailEmailChange)
	other := b.client(t) // the new mailbox, in another browser
	res = b.get(t, other, "/account/email/confirm?token="+tok)
	if res.status != http.StatusOK {
		t.Fatalf("email confirm page: %d", res.status)
	}
	mustContain(t, res.body, "Confirm my new address", next)
	if n := b.count(t, `SELECT count(*) FROM accounts WHERE email = $1`, old); n != 1 {
		t.Fatal("opening the link changed the address")
	}
	if res := b.post(t, other, "/account/email/confirm", url.Values{"token": {tok}}); res.status != http.StatusSeeOther {
		t.Fatalf("confirm new address: %d", res.status)
	}
	if s := b.signInStatus(t, next, password); s != http.StatusSeeOther {
		t.Errorf("new address: %d", s)
	}
	if s := b.signInStatus(t, old, password); s != http.StatusUnauthorized {
		t.Errorf("old address after the change: %d", s)
	}
	if res := b.post(t, other, "/account/email/confirm", url.Values{"token": {tok}}); res.status != http.StatusConflict {
		t.Errorf("second use: %d", res.status)
	}
}

func TestEmailChangeToTakenAddress(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.confirmed(t, "mover@example.com", password)
	c := b.client(t)
	b.signIn(t, c, "mover@example.com", password)
	if res := b.post(t, c, "/account/email", url.Values{"current_password": {password}, "email": {"wanted@example.com"}}); res.status != http.StatusSeeOther {
		t.Fatalf("change email: %d", res.status)
	}
	tok := b.link(t, "wanted@example.com", account.MailEmailChange)
	b.confirmed(t, "wanted@example.com", password) // taken in between
	res := b.post(t, c, "/account/email/confirm", url.Values{"token": {tok}})
	if res.status != http.StatusConflict {
		t.Fatalf("confirm a taken address: %d", res.status)
	}
	mustContain(t, res.body, "That address is taken")
	if n := b.count(t, `SELECT count(*) FROM accounts WHERE email = 'mover@example.com'`); n != 1 {
		t.Error("the account lost its address")
	}
}

func TestSessionsAndPasswordChange(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const email = "many@example.com"
	b.confirmed(t, email, password)
	browsers := []*http.Client{b.client(t), b.client(t), b.client(t)}
	for _, c := range browsers {
		b.signIn(t, c, email, password)
	}
	page := b.get(t, browsers[0], "/").body
	if n := strings.Count(page, "<li>"); n != 3 {
		t.Errorf("sessions listed: %d, want 3", n)
	}
	mustContain(t, page, "this browser", "Sign out everywhere else", "Unknown browser")
	var id int64
	if err := b.db.Pool().QueryRow(t.Context(), `SELECT max(id) FROM sessions`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if res := b.post(t, browsers[0], "/account/sessions/"+strconv.FormatInt(id, 10)+"/revoke", nil); res.status != http.StatusSeeOther {
		t.Fatalf("revoke one: %d", res.status)
	}
	if strings.Contains(b.get(t, browsers[2], "/").body, email) {
		t.Error("the revoked browser is still signed in")
	}
	if !strings.Contains(b.get(t, browsers[1], "/").body, email) {
		t.Error("another browser was signed out")
	}
	if res := b.post(t, browsers[0], "/account/sessions/revoke-others", nil); res.status != http.StatusSeeOther {
		t.Fatalf("revoke others: %d", res.status)
	}
	if strings.Contains(b.get(t, browsers[1], "/").body, email) {
		t.Error("revoke-others left a browser signed in")
	}
	mustContain(t, b.get(t, browsers[0], "/").body, email)

	// Changing the password signs the others out, not this browser.
	b.signIn(t, browsers[1], email, password)
	const newPassword = "changed it myself today"
	res := b.post(t, browsers[0], "/account/password", url.Values{"current_password": {password}, "password": {newPassword}})
	if res.status != http.StatusSeeOther {
		t.Fatalf("change password: %d %s", res.status, res.body)
	}
	mustContain(t, b.get(t, browsers[0], "/").body, email, "Your password was changed")
	if strings.Contains(b.get(t, browsers[1], "/").body, email) {
		t.Error("a password change left another browser signed in")
	}
	if s := b.signInStatus(t, email, newPassword); s != http.StatusSeeOther {
		t.Errorf("new password: %d", s)
	}
	if n := b.count(t, `SELECT count(*) FROM outbox WHERE kind = 'password_changed'`); n != 1 {
		t.Errorf("notices: %d", n)
	}
	// Not signed in: the settings send you to sign in.
	if res := b.post(t, b.client(t), "/account/password", url.Values{"current_password": {password}, "password": {newPassword}}); res.status != http.StatusSeeOther || res.header.Get("Location") != "/login" {
		t.Errorf("signed out: %d %s", res.status, res.header.Get("Location"))
	}
}

// Deleting an account takes its sessions, tokens and pending mail with it,
// and leaves one goodbye to its address.
func TestDeleteAccount(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const email = "leaving@example.com"
	b.confirmed(t, email, password)
	c, other := b.client(t), b.client(t)
	b.signIn(t, c, email, password)
	b.signIn(t, other, email, password)
	b.post(t, b.client(t), "/password/forgot", url.Values{"email": {email}}) // pending mail
	b.link(t, email, account.MailReset)                                      // and a live token
	b.post(t, b.client(t), "/password/forgot", url.Values{"email": {email}})

	if res := b.post(t, c, "/account/delete", url.Values{"current_password": {"not it at all"}}); res.status != http.StatusBadRequest {
		t.Fatalf("wrong password: %d", res.status)
	}
	res := b.post(t, c, "/account/delete", url.Values{"current_password": {password}})
	if res.status != http.StatusSeeOther {
		t.Fatalf("delete: %d %s", res.status, res.body)
	}
	mustContain(t, b.get(t, c, "/").body, "Your account was deleted", "Welcome")
	for table, n := range map[string]int{"accounts": 0, "sessions": 0, "tokens": 0} {
		if got := b.count(t, "SELECT count(*) FROM "+table); got != n {
			t.Errorf("%s: %d rows", table, got)
		}
	}
	if n := b.count(t, `SELECT count(*) FROM outbox WHERE kind <> 'account_deleted' AND account_id IS NOT NULL`); n != 0 {
		t.Errorf("the account's mail survived: %d rows", n)
	}
	if n := b.count(t, `SELECT count(*) FROM outbox WHERE kind = 'account_deleted' AND recipient = $1 AND status = 'pending'`, email); n != 1 {
		t.Errorf("goodbyes: %d", n)
	}
	if strings.Contains(b.get(t, other, "/").body, email) {
		t.Error("another browser is still signed in")
	}
}

// Rate limits and mail limits key on the normalized address.
func TestPaddedAddressLimited(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *options) { o.rateLimit = 3 })
	variants := []string{"victim@example.com", " victim@example.com", "victim@example.com ", "  Victim@EXAMPLE.com  "}
	for i, v := range variants {
		res := b.post(t, b.client(t), "/login", url.Values{"email": {v}, "password": {"guess number one"}})
		want := http.StatusUnauthorized
		if i == 3 {
			want = http.StatusTooManyRequests
		}
		if res.status != want {
			t.Errorf("sign-in %d with %q: %d, want %d", i, v, res.status, want)
		}
	}
}

// The mail limits live in PostgreSQL: two instances share them.
func TestMailCooldownAcrossInstances(t *testing.T) {
	t.Parallel()
	a := setup(t)
	b := setup(t, func(o *options) { o.instanceOf = a })
	a.signup(t, a.client(t), "twice@example.com", password)
	sent := func() int {
		return a.count(t, `SELECT count(*) FROM outbox WHERE kind = 'confirm' AND account_id IS NOT NULL`)
	}
	if n := sent(); n != 1 {
		t.Fatalf("after signup: %d confirmations", n)
	}
	resend := func(site *bundle, email string) {
		t.Helper()
		if res := site.post(t, site.client(t), "/confirm/resend", url.Values{"email": {email}}); res.status != http.StatusOK {
			t.Fatalf("resend: %d", res.status)
		}
	}
	resend(a, "twice@example.com")
	resend(b, " Twice@example.com")
	resend(a, "TWICE@EXAMPLE.COM")
	if n := sent(); n != 2 {
		t.Errorf("three resends within the cooldown, from two instances: %d confirmations, want 2", n)
	}
	// After the cooldown, again; at most 10 a day in all.
	for range 12 {
		a.clock.Add(61 * time.Second)
		resend(b, "twice@example.com")
	}
	if n := sent(); n != 10 {
		t.Errorf("a day of resends: %d confirmations, want 10", n)
	}
	// The held ones (2 within the cooldown, 4 past the cap) were queued
	// without an account, to be dropped.
	if n := a.count(t, `SELECT count(*) FROM outbox WHERE account_id IS NULL`); n != 6 {
		t.Errorf("held rows: %d, want 6", n)
	}
	a.clock.Add(24 * time.Hour)
	resend(a, "twice@example.com")
	if n := sent(); n != 11 {
		t.Errorf("the next day: %d confirmations, want 11", n)
	}
}

func TestTitlesAndNotices(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.client(t)
	for path, title := range map[string]string{
		"/signup": "Create your account", "/login": "Sign in", "/password/forgot": "Reset your password",
		"/confirm/resend": "Send the confirmation again", "/": "Welcome",
	} {
		body := b.get(t, c, path).body
		mustContain(t, body, "<title>"+title+" · Signup</title>", "<h1>"+title+"</h1>")
	}
	res := b.post(t, c, "/login", url.Values{"email": {"x@example.com"}, "password": {"wrong password"}})
	mustContain(t, res.body, "<title>Error: Sign in · Signup</title>")
	b.signup(t, c, "named@example.com", password)
	mustContain(t, b.get(t, c, "/signup/sent").body, `<strong id="sent-to">named@example.com</strong>`)
	b.confirmed(t, "notice@example.com", password)
	b.signIn(t, c, "notice@example.com", password)
	mustContain(t, b.get(t, c, "/").body, "You are signed in.")
	if strings.Contains(b.get(t, c, "/").body, "You are signed in.") {
		t.Error("the notice showed twice")
	}
	b.post(t, c, "/logout", nil)
	mustContain(t, b.get(t, c, "/").body, "You are signed out.")
}
