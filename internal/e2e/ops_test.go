package e2e_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"signup/internal/e2e"
	"signup/internal/store/storetest"
)

// TestOpsListenerOnTheBinary: the findings as reproduced on the built
// binary. Passwords given as flags stay out of pprof's cmdline and the
// log; a request for a rebound DNS name gets 421; with OPS_TOKEN, the
// dashboard and pprof need it while /metrics does not.
func TestOpsListenerOnTheBinary(t *testing.T) {
	t.Parallel()
	mail := startMail(t)
	// Trust authentication ignores the password; it is there to leak.
	dbURL := strings.Replace(storetest.URL(t), "postgres@", "postgres:dbsecret@", 1)
	smtpURL := strings.Replace(mail.SMTPURL(), "smtp://", "smtp://mailuser:hunter2@", 1)
	const token = "ops-e2e-token-0123456789abcdef"
	p := e2e.Start(t, webBinary, map[string]string{"OPS_ADDR": "127.0.0.1:0", "OPS_TOKEN": token},
		"serve", "--database-url", dbURL, "--smtp-url", smtpURL)
	ops := p.OpsURL(t)
	e2e.WaitReady(t, p.URL(), time.Minute)

	get := func(path, host, auth string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, ops+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	for _, secret := range []string{"hunter2", "dbsecret"} {
		if code, body := get("/debug/pprof/cmdline", "", token); code != http.StatusNotFound || strings.Contains(body, secret) {
			t.Errorf("cmdline = %d, %q", code, body)
		}
		if strings.Contains(p.Log(), secret) {
			t.Errorf("the log shows %q", secret)
		}
	}
	if code, body := get("/", "rebind.attacker.example", token); code != http.StatusMisdirectedRequest || body != "" {
		t.Errorf("dashboard for a rebound name = %d %q, want 421 and nothing", code, body)
	}
	if code, _ := get("/debug/pprof/", "", ""); code != http.StatusUnauthorized {
		t.Errorf("pprof without the token = %d, want 401", code)
	}
	if code, _ := get("/", "", ""); code != http.StatusSeeOther {
		t.Errorf("dashboard without the token = %d, want the sign-in form", code)
	}
	if code, body := get("/", "localhost", token); code != http.StatusOK || !strings.Contains(body, "Status") {
		t.Errorf("dashboard with the token = %d", code)
	}
	if code, body := get("/metrics", "", ""); code != http.StatusOK || !strings.Contains(body, "signup_outbox_rows") {
		t.Errorf("/metrics = %d, want it open (OPS_METRICS_AUTH is off)", code)
	}
}
