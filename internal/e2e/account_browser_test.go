package e2e_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"signup/internal/devmail"
	"signup/internal/e2e"
	"signup/internal/store/storetest"
)

// TestBrowserAccountLifecycle walks, in Chromium, what a person does after
// signing up: forgets the password, resets it from the email and is signed
// in; then moves the account to a new address, confirmed from the email
// that went there.
func TestBrowserAccountLifecycle(t *testing.T) {
	mail := devmail.New(devmail.Config{HTTPAddr: "127.0.0.1:0"})
	if err := mail.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mail.Stop(context.Background()) })
	port := freePort(t)
	site := "http://127.0.0.1:" + port
	e2e.Start(t, webBinary, map[string]string{
		"DATABASE_URL": storetest.URL(t),
		"SMTP_URL":     mail.SMTPURL(),
		"HTTP_ADDR":    "127.0.0.1:" + port,
		"BASE_URL":     site,
		"OPS_ADDR":     "",
		"RATE_LIMIT":   "off",
		"SITE_NAME":    "Lifecycle Demo",
	})
	e2e.WaitReady(t, site, 30*time.Second)

	w := newWalkthrough(t, "account")
	ctx, shot, shots := w.ctx, w.shot, w.dir
	run := w.run
	// waitMail waits for an email with subject to address to.
	waitMail := func(to, subject string) {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		_, err := mail.Wait(wctx, func(ms []devmail.Message) bool {
			for _, m := range ms {
				if strings.EqualFold(m.To[0], to) && m.Subject == subject {
					return true
				}
			}
			return false
		})
		if err != nil {
			t.Fatalf("no %q email to %s: %v", subject, to, err)
		}
	}
	// openLink opens the inbox, the newest message with subject, and its
	// link to path.
	openLink := func(step, subject, path string) {
		t.Helper()
		run(step,
			chromedp.Navigate(mail.InboxURL()),
			chromedp.WaitVisible(`//a[contains(., "`+subject+`")]`),
			shot(step+"-inbox"),
			chromedp.Click(`//a[contains(., "`+subject+`")]`),
			chromedp.WaitVisible(chromedp.CSS(`a.msg-link[href*="`+path+`?token="]`)),
			chromedp.Click(chromedp.CSS(`a.msg-link[href*="`+path+`?token="]`)),
		)
	}
	const (
		email       = "forgetful@example.com"
		newEmail    = "moved@example.com"
		password    = "a long and unusual passphrase"
		newPassword = "another long passphrase"
	)

	run("sign up",
		chromedp.Navigate(site+"/signup"),
		chromedp.WaitVisible(chromedp.CSS(`#email`)),
		chromedp.SendKeys(chromedp.CSS(`#email`), email),
		chromedp.SendKeys(chromedp.CSS(`#password`), password),
		chromedp.Submit(chromedp.CSS(`#password`)),
		chromedp.WaitVisible(chromedp.CSS(`#sent-to`)),
		shot("01-check-inbox"),
	)
	waitMail(email, "Confirm your email address for Lifecycle Demo")
	openLink("02-confirm", "Confirm your email address for Lifecycle Demo", "/confirm")
	run("confirm",
		chromedp.WaitVisible(`//button[contains(., "Confirm my address")]`),
		chromedp.Click(`//button[contains(., "Confirm my address")]`),
		chromedp.WaitVisible(`//h1[contains(., "Your account is confirmed")]`),
	)

	// Forgot → inbox → reset → signed in.
	run("forgot",
		chromedp.Navigate(site+"/login"),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/password/forgot"]`)),
		chromedp.Click(chromedp.CSS(`a[href="/password/forgot"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#email`)),
		chromedp.SendKeys(chromedp.CSS(`#email`), email),
		shot("03-forgot"),
		chromedp.Submit(chromedp.CSS(`#email`)),
		chromedp.WaitVisible(chromedp.CSS(`#sent-to`)),
		shot("04-forgot-sent"),
	)
	waitMail(email, "Reset your Lifecycle Demo password")
	openLink("05-reset", "Reset your Lifecycle Demo password", "/password/reset")
	run("reset",
		chromedp.WaitVisible(`//h1[contains(., "Choose a new password")]`),
		chromedp.SendKeys(chromedp.CSS(`#password`), newPassword),
		shot("06-reset-form"),
		chromedp.Submit(chromedp.CSS(`#password`)),
		chromedp.WaitVisible(chromedp.CSS(`#account-email`)),
		chromedp.WaitVisible(`//p[contains(., "Your new password is set")]`),
		shot("07-reset-signed-in"),
	)
	waitMail(email, "Your Lifecycle Demo password was changed")

	// Change email → confirm from the new address.
	run("change email",
		chromedp.SendKeys(chromedp.CSS(`#email-current-password`), newPassword),
		chromedp.SendKeys(chromedp.CSS(`#new-email`), newEmail),
		chromedp.Submit(chromedp.CSS(`#new-email`)),
		chromedp.WaitVisible(`//p[contains(., "We sent a link to `+newEmail+`")]`),
		shot("08-email-requested"),
	)
	if got, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#account-email`))); err != nil || got != email {
		t.Errorf("before the link, the account shows %q (%v), want %s", got, err, email)
	}
	waitMail(email, "Your Lifecycle Demo email address is being changed")
	waitMail(newEmail, "Confirm your new email address for Lifecycle Demo")
	openLink("09-email-confirm", "Confirm your new email address for Lifecycle Demo", "/account/email/confirm")
	run("confirm new address",
		chromedp.WaitVisible(`//button[contains(., "Confirm my new address")]`),
		shot("10-email-confirm"),
		chromedp.Click(`//button[contains(., "Confirm my new address")]`),
		chromedp.WaitVisible(`//p[contains(., "is now `+newEmail+`")]`),
		shot("11-email-changed"),
	)
	if got, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#account-email`))); err != nil || got != newEmail {
		t.Errorf("after the link, the account shows %q (%v), want %s", got, err, newEmail)
	}
	run("phone account page",
		chromedp.EmulateViewport(390, 844),
		chromedp.Navigate(site+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#account-email`)),
		shot("12-account-phone"),
	)
	t.Logf("screenshots in %s", shots)
}
