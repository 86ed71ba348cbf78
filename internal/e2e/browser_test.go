package e2e_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"signup/internal/devmail"
	"signup/internal/e2e"
	"signup/internal/store/storetest"
	"signup/internal/waitfor"
)

// outputDir is test-output/<name> at the repository root.
func outputDir(t *testing.T, name string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "test-output", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// walkthrough is a browser session a test drives step by step: its
// context, bounded only against a hang (a loaded machine walks slowly),
// and the folder its screenshots go to.
type walkthrough struct {
	t   *testing.T
	ctx context.Context
	dir string
}

// newWalkthrough opens a browser for t, its screenshots going to
// test-output/<name>.
func newWalkthrough(t *testing.T, name string) *walkthrough {
	t.Helper()
	ctx, cancel := context.WithTimeout(e2e.Browser(t), 5*time.Minute)
	t.Cleanup(cancel)
	return &walkthrough{t: t, ctx: ctx, dir: outputDir(t, name)}
}

// shot is the action that saves a full-page screenshot as <name>.png.
func (w *walkthrough) shot(name string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		png, err := chromedp.FullScreenshot(100)(ctx, tg)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(w.dir, name+".png"), png, 0o644)
	})
}

// run does actions as one step of the walk, failing the test with the
// step's name.
func (w *walkthrough) run(step string, actions ...chromedp.Action[chromedp.Void]) {
	w.t.Helper()
	if err := chromedp.Do(w.ctx, actions...); err != nil {
		w.t.Fatalf("%s: %v", step, err)
	}
}

// freePort returns a port nothing listens on now, for a BASE_URL that must
// be known before the process starts.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// TestBrowserFlow walks the whole product in Chromium: sign up, find the
// email in the dev inbox, click the link, sign in, see the account, sign out.
func TestBrowserFlow(t *testing.T) {
	mail := devmail.New(devmail.Config{HTTPAddr: "127.0.0.1:0"})
	if err := mail.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mail.Stop(context.Background()) })

	port := freePort(t)
	site := "http://127.0.0.1:" + port
	web := e2e.Start(t, webBinary, map[string]string{
		"DATABASE_URL": storetest.URL(t),
		"SMTP_URL":     mail.SMTPURL(),
		"HTTP_ADDR":    "127.0.0.1:" + port,
		"BASE_URL":     site,
		"OPS_ADDR":     "127.0.0.1:0",
		"RATE_LIMIT":   "off",
	})
	e2e.WaitReady(t, site, 30*time.Second)

	w := newWalkthrough(t, "browser")
	ctx, shot, shots := w.ctx, w.shot, w.dir
	text := func(sel chromedp.CSS) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(sel))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return s
	}
	run := w.run
	const email, password = "browser@example.com", "a long and unusual passphrase"

	run("open the site",
		chromedp.Navigate(site),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/signup"]`)),
		shot("01-home"),
		chromedp.Click(chromedp.CSS(`main a[href="/signup"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#email`)),
		shot("02-signup"),
	)
	signedUp := time.Now()
	run("sign up",
		chromedp.SendKeys(chromedp.CSS(`#email`), email),
		chromedp.SendKeys(chromedp.CSS(`#password`), password),
		chromedp.Submit(chromedp.CSS(`#password`)),
		chromedp.WaitVisible(`//h1[contains(., "Check your inbox")]`),
		shot("03-check-inbox"),
	)

	// How soon it comes is the machine's business (logged below); that the
	// queue sends it without waiting for a sweep is internal/mail's tests'.
	waitCtx, cancelWait := context.WithTimeout(ctx, time.Minute)
	msgs, err := mail.Wait(waitCtx, func(m []devmail.Message) bool { return len(m) > 0 })
	cancelWait()
	if err != nil {
		t.Fatalf("no email to %s within a minute of signing up: %v", email, err)
	}
	t.Logf("email arrived %v after the signup was submitted", time.Since(signedUp))
	if msgs[0].To[0] != email {
		t.Fatalf("email to %v", msgs[0].To)
	}

	run("open the dev inbox",
		chromedp.Navigate(mail.InboxURL()),
		chromedp.WaitVisible(`//a[contains(., "Confirm your email address")]`),
		shot("04-inbox"),
		chromedp.Click(`//a[contains(., "Confirm your email address")]`),
		chromedp.WaitVisible(chromedp.CSS(`a.msg-link[href*="/confirm?token="]`)),
		shot("05-message"),
	)
	// The inbox frames the HTML part under a sandbox that the screenshot
	// does not wait for; the part's own URL shows what a mail client would.
	message := fmt.Sprintf("%s/messages/%d", strings.TrimSuffix(mail.InboxURL(), "/"), msgs[0].ID)
	run("view the HTML part",
		chromedp.Navigate(message+"/html"),
		chromedp.WaitVisible(`//a[contains(., "Confirm my address")]`),
		shot("05b-message-html"),
		chromedp.Navigate(message),
		chromedp.WaitVisible(chromedp.CSS(`a.msg-link[href*="/confirm?token="]`)),
	)
	run("click the link",
		chromedp.Click(chromedp.CSS(`a.msg-link[href*="/confirm?token="]`)),
		chromedp.WaitVisible(`//button[contains(., "Confirm my address")]`),
		shot("06a-confirm-button"),
		chromedp.Click(`//button[contains(., "Confirm my address")]`),
		chromedp.WaitVisible(`//h1[contains(., "Your account is confirmed")]`),
		shot("06-confirmed"),
	)
	if got, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(`#email`))); err != nil || got != email {
		t.Errorf("the sign-in form after confirming holds %q (%v), want the address", got, err)
	}
	run("sign in",
		chromedp.WaitVisible(chromedp.CSS(`#password`)),
		chromedp.SendKeys(chromedp.CSS(`#password`), password),
		shot("07-sign-in"),
		chromedp.Submit(chromedp.CSS(`#password`)),
		chromedp.WaitVisible(chromedp.CSS(`#account-email`)),
		shot("08-account"),
	)
	if got := strings.TrimSpace(text(chromedp.CSS(`#account-email`))); got != email {
		t.Fatalf("account page shows %q", got)
	}
	run("sign out",
		chromedp.Click(chromedp.CSS(`main form[action="/logout"] button`)),
		chromedp.WaitVisible(`//h1[contains(., "Welcome")]`),
		shot("09-signed-out"),
	)
	// A small load, then one email the SMTP peer refuses for good; the
	// status dashboard shows it all, and retries the failure.
	const load = 12
	c := e2e.NewClient()
	for i := range load - 1 {
		c.Signup(t, site, fmt.Sprintf("load%02d@example.com", i))
	}
	waitCtx, cancelWait = context.WithTimeout(ctx, 2*time.Minute)
	msgs, err = mail.Wait(waitCtx, func(m []devmail.Message) bool { return len(m) == load })
	cancelWait()
	if err != nil {
		t.Fatalf("%d of the %d emails arrived within two minutes: %v", len(msgs), load, err)
	}
	const refused = "refused@example.com"
	mail.FailNext(1, 550)
	c.Signup(t, site, refused)
	status := web.OpsURL(t)
	waitfor.Until(t, time.Minute, func() error {
		res, err := http.Get(status)
		if err != nil {
			return fmt.Errorf("status dashboard: %w", err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			return fmt.Errorf("status dashboard: %w", err)
		}
		if !strings.Contains(string(b), refused) {
			return fmt.Errorf("the dashboard does not show the failed email to %s", refused)
		}
		return nil
	})
	run("status dashboard",
		chromedp.Navigate(status),
		chromedp.WaitVisible(`//section[@id="failures"]//td[contains(., "`+refused+`")]`),
		shot("11-status"),
	)
	if got := strings.TrimSpace(text(chromedp.CSS(`#outbox-sent`))); got != strconv.Itoa(load) {
		t.Errorf("the dashboard shows %s sent, want %d", got, load)
	}
	run("retry the failed email",
		chromedp.Click(chromedp.CSS(`#failures form button`)),
		chromedp.WaitVisible(chromedp.CSS(`.notice`)),
		shot("12-status-retried"),
	)
	waitCtx, cancelWait = context.WithTimeout(ctx, 2*time.Minute)
	_, err = mail.Wait(waitCtx, func(m []devmail.Message) bool { return len(m) == load+1 })
	cancelWait()
	if err != nil {
		t.Fatalf("the retried email to %s did not arrive within two minutes: %v", refused, err)
	}

	// A phone-sized view of the signup page, to see it fits.
	run("phone",
		chromedp.EmulateViewport(390, 844),
		chromedp.Navigate(site+"/signup"),
		chromedp.WaitVisible(chromedp.CSS(`#email`)),
		shot("10-signup-phone"),
	)
	t.Logf("screenshots in %s", shots)
}
