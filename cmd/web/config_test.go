package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"signup/internal/hosted"
)

func env(kv map[string]string) lookupEnv {
	return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
}

func TestConfigProblemsNameTheVariable(t *testing.T) {
	base := map[string]string{
		"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/x",
		"SMTP_URL":     "smtp://127.0.0.1:1025",
	}
	cases := []struct {
		name, key, value, want string
	}{
		{"missing database", "DATABASE_URL", "", "DATABASE_URL is required"},
		{"not postgres", "DATABASE_URL", "mysql://x", "DATABASE_URL is not a postgres:// URL"},
		{"missing smtp", "SMTP_URL", "", "SMTP_URL is required"},
		{"unparseable smtp", "SMTP_URL", "smtp://[::1", "SMTP_URL is not a URL"},
		{"smtp scheme", "SMTP_URL", "http://mail:25", `SMTP_URL has scheme "http"`},
		{"smtp port", "SMTP_URL", "smtp://mail:99999", "SMTP_URL has port"},
		{"smtp param", "SMTP_URL", "smtp://mail:25?tls=yes", "SMTP_URL has unknown parameter"},
		{"bad duration", "SHUTDOWN_TIMEOUT", "soon", "SHUTDOWN_TIMEOUT is not a positive duration"},
		{"negative duration", "UNCONFIRMED_RETENTION", "-1h", "UNCONFIRMED_RETENTION is not a positive duration"},
		{"bad schedule", "PURGE_SCHEDULE", "every night", "PURGE_SCHEDULE is not a cron expression"},
		{"bad zone", "PURGE_TZ", "Mars/Olympus", "PURGE_TZ is not a known time zone"},
		{"bad share", "PURGE_MAX_SHARE", "2", "PURGE_MAX_SHARE is not a share"},
		{"bad rate", "RATE_LIMIT", "lots", `RATE_LIMIT is "lots"`},
		{"bad proxies", "TRUSTED_PROXIES", "10.0.0.0/8, nonsense", `TRUSTED_PROXIES has "nonsense"`},
		{"bad base", "BASE_URL", "example.com", "BASE_URL is not an absolute http(s) URL"},
		{"bad addr", "HTTP_ADDR", "8080", `HTTP_ADDR is "8080"`},
		{"bad from", "MAIL_FROM", "nobody", "MAIL_FROM is not an email address"},
		{"site name on two lines", "SITE_NAME", "Acme\nWidgets", "SITE_NAME must be one line"},
		{"site name too long", "SITE_NAME", strings.Repeat("x", 65), "SITE_NAME is longer than 64 characters"},
		{"bad log", "LOG_FORMAT", "xml", "LOG_FORMAT is not text or json"},
		{"negative stop delay", "STOP_DELAY", "-5s", "STOP_DELAY is not a duration of zero or more"},
		{"bad request timeout", "REQUEST_TIMEOUT", "forever", "REQUEST_TIMEOUT is not a positive duration"},
		{"bad hash queue wait", "HASH_QUEUE_WAIT", "0s", "HASH_QUEUE_WAIT is not a positive duration"},
		{"hash queue wait past the response bound", "HASH_QUEUE_WAIT", "25s", "HASH_QUEUE_WAIT plus REQUEST_TIMEOUT must be under 30s"},
		{"bad retry", "MAIL_RETRY_MIN", "0s", "MAIL_RETRY_MIN is not a positive duration"},
		{"retry min over max", "MAIL_RETRY_MIN", "2h", "MAIL_RETRY_MIN must not exceed MAIL_RETRY_MAX"},
		{"warning too long", "INACTIVE_WARNING", "9000h", "INACTIVE_WARNING must be shorter than INACTIVE_RETENTION"},
		{"ops exposed without a token", "OPS_ADDR", "0.0.0.0:9090", "OPS_TOKEN is required when OPS_ADDR (0.0.0.0:9090) is not a loopback address"},
		{"ops on every interface without a token", "OPS_ADDR", ":9090", "OPS_TOKEN is required when OPS_ADDR (:9090) is not a loopback address"},
		{"short ops token", "OPS_TOKEN", "secret", "OPS_TOKEN is too short"},
		{"metrics auth without a token", "OPS_METRICS_AUTH", "true", "OPS_METRICS_AUTH=true needs OPS_TOKEN"},
		{"bad metrics auth", "OPS_METRICS_AUTH", "yes please", `OPS_METRICS_AUTH is "yes please"`},
		{"bad insecure", "OPS_INSECURE", "maybe", `OPS_INSECURE is "maybe"`},
		{"bad ops hosts", "OPS_HOSTS", "localhost, http://x", `OPS_HOSTS has "http://x"`},
		{"bad mail policy", "MAIL_ON_FAILURE", "explode", `MAIL_ON_FAILURE is "explode"; want stop, restart or ignore`},
		{"bad purge policy", "PURGE_ON_FAILURE", "retry", `PURGE_ON_FAILURE is "retry"; want stop, restart or ignore`},
		{"bad cooldown", "MAIL_COOLDOWN", "a while", "MAIL_COOLDOWN is not a positive duration"},
		{"cooldown over a day", "MAIL_COOLDOWN", "25h", "MAIL_COOLDOWN must be at most 24h"},
		{"bad reset ttl", "RESET_TTL", "0s", "RESET_TTL is not a positive duration"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kv := map[string]string{}
			for k, v := range base {
				kv[k] = v
			}
			kv[tc.key] = tc.value
			var stderr bytes.Buffer
			err := run(context.Background(), nil, env(kv), &stderr, &stderr)
			var ce *configError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a configuration error", err)
			}
			if len(ce.problems) != 1 || !strings.HasPrefix(ce.problems[0], tc.want) {
				t.Fatalf("problems %q, want one starting %q", ce.problems, tc.want)
			}
			var out bytes.Buffer
			if code := exitCode(err, &out); code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 1 {
				t.Errorf("want one line, got %q", out.String())
			}
			if strings.Contains(out.String(), "secret") {
				t.Error("a password leaked into the message")
			}
		})
	}
}

func TestConfigDefaultsAndFlags(t *testing.T) {
	kv := map[string]string{"DATABASE_URL": "postgres://localhost/x", "SMTP_URL": "smtps://user:secret@mail.example.com", "RATE_LIMIT": "5/h"}
	cfg, _, err := loadConfig(newFlagSet(), []string{"--http-addr", "127.0.0.1:0", "--purge-schedule", "@every 10m", "--inactive-warning=7d"}, env(kv), needs{smtp: true}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPAddr != "127.0.0.1:0" || cfg.PurgeSchedule != "@every 10m" || cfg.InactiveWarning != 7*24*time.Hour {
		t.Errorf("flags did not override: %+v", cfg)
	}
	if cfg.OpsAddr != "127.0.0.1:9090" || cfg.BaseURL.String() != "http://localhost:8080" || cfg.MailFrom != `"Signup" <no-reply@localhost>` || cfg.SiteName != "Signup" ||
		cfg.ShutdownTimeout != 30*time.Second || cfg.UnconfirmedRetention != 168*time.Hour || cfg.InactiveRetention != 8760*time.Hour ||
		cfg.PurgeMaxShare != 0.5 || cfg.PurgeTZ.String() != "UTC" || cfg.MailRetryMin != 5*time.Second || cfg.MailRetryMax != time.Hour ||
		cfg.RequestTimeout != 10*time.Second || cfg.StopDelay != 0 || cfg.HashQueueWait != 15*time.Second {
		t.Errorf("defaults: %+v", cfg)
	}
	if cfg.RateLimit.N != 5 || cfg.RateLimit.Period != time.Hour {
		t.Errorf("rate limit %+v", cfg.RateLimit)
	}
	if cfg.SMTP.Username != "user" || cfg.SMTP.Password != "secret" || cfg.SMTP.Port != 465 {
		t.Errorf("smtp %+v", cfg.SMTP)
	}
}

func TestHashWaitLimitLeavesTheRequestItsTime(t *testing.T) {
	// A queued signup may wait on while its answer can still be written:
	// the response's 30 s less the request's own time (the queue never
	// uses less than HASH_QUEUE_WAIT, which the configuration keeps under
	// that).
	for _, tc := range []struct {
		requestTimeout, want time.Duration
	}{
		{10 * time.Second, 20 * time.Second},
		{5 * time.Second, 25 * time.Second},
		{0, 20 * time.Second}, // the site's default request timeout
	} {
		got := hashWaitLimit(&config{RequestTimeout: tc.requestTimeout, HashQueueWait: 15 * time.Second})
		if got != tc.want {
			t.Errorf("REQUEST_TIMEOUT %v: wait limit %v, want %v", tc.requestTimeout, got, tc.want)
		}
	}
}

func TestSeveralProblemsOneLineEach(t *testing.T) {
	var stderr bytes.Buffer
	err := run(context.Background(), nil, env(map[string]string{"SHUTDOWN_TIMEOUT": "x"}), &stderr, &stderr)
	var out bytes.Buffer
	if code := exitCode(err, &out); code != 2 {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 lines (DATABASE_URL, SMTP_URL, SHUTDOWN_TIMEOUT), got %q", lines)
	}
}

// TestFromNamesTheSite: MAIL_FROM without a display name takes SITE_NAME's;
// one with its own keeps it.
func TestFromNamesTheSite(t *testing.T) {
	for _, tc := range []struct{ from, site, want string }{
		{"no-reply@acme.example", "Acme Widgets", `"Acme Widgets" <no-reply@acme.example>`},
		{"Team <no-reply@acme.example>", "Acme Widgets", `"Team" <no-reply@acme.example>`},
		{"", "", `"Signup" <no-reply@localhost>`},
	} {
		kv := map[string]string{"DATABASE_URL": "postgres://localhost/x", "SMTP_URL": "smtp://localhost:25", "MAIL_FROM": tc.from, "SITE_NAME": tc.site}
		cfg, _, err := loadConfig(newFlagSet(), nil, env(kv), needs{smtp: true}, &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		if cfg.MailFrom != tc.want {
			t.Errorf("MAIL_FROM %q, SITE_NAME %q: From %s, want %s", tc.from, tc.site, cfg.MailFrom, tc.want)
		}
	}
}

// TestOpsAddrEmptyDisables: OPS_ADDR unset takes its default; set to the
// empty string, it turns the ops listener off (other variables set empty
// still take their defaults).
func TestOpsAddrEmptyDisables(t *testing.T) {
	kv := map[string]string{"DATABASE_URL": "postgres://localhost/x", "SMTP_URL": "smtp://localhost:25", "HTTP_ADDR": ""}
	cfg, _, err := loadConfig(newFlagSet(), nil, env(kv), needs{smtp: true}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OpsAddr != "127.0.0.1:9090" || cfg.HTTPAddr != ":8080" {
		t.Errorf("unset OPS_ADDR = %q, empty HTTP_ADDR = %q; want the defaults", cfg.OpsAddr, cfg.HTTPAddr)
	}
	kv["OPS_ADDR"] = ""
	if cfg, _, err = loadConfig(newFlagSet(), nil, env(kv), needs{smtp: true}, &bytes.Buffer{}); err != nil || cfg.OpsAddr != "" {
		t.Errorf("OPS_ADDR set empty = %q, %v; want it off", cfg.OpsAddr, err)
	}
	delete(kv, "OPS_ADDR")
	if cfg, _, err = loadConfig(newFlagSet(), []string{"--ops-addr="}, env(kv), needs{smtp: true}, &bytes.Buffer{}); err != nil || cfg.OpsAddr != "" {
		t.Errorf("--ops-addr= gives %q, %v; want it off", cfg.OpsAddr, err)
	}
}

func TestOpsSettings(t *testing.T) {
	base := map[string]string{"DATABASE_URL": "postgres://localhost/x", "SMTP_URL": "smtp://localhost:25"}
	load := func(extra map[string]string) *config {
		t.Helper()
		kv := map[string]string{}
		for k, v := range base {
			kv[k] = v
		}
		for k, v := range extra {
			kv[k] = v
		}
		cfg, _, err := loadConfig(newFlagSet(), nil, env(kv), needs{smtp: true}, &bytes.Buffer{})
		if err != nil {
			t.Fatalf("%v: %v", extra, err)
		}
		return cfg
	}
	cfg := load(nil)
	if strings.Join(cfg.OpsHosts, ",") != "localhost,127.0.0.1,::1" || cfg.OpsToken != "" || cfg.OpsMetricsAuth || cfg.OpsInsecure {
		t.Errorf("defaults: hosts %q token %q metrics auth %v insecure %v", cfg.OpsHosts, cfg.OpsToken, cfg.OpsMetricsAuth, cfg.OpsInsecure)
	}
	cfg = load(map[string]string{"OPS_ADDR": "ops.internal:9090", "OPS_TOKEN": "0123456789abcdef0123", "OPS_METRICS_AUTH": "true"})
	if strings.Join(cfg.OpsHosts, ",") != "localhost,127.0.0.1,::1,ops.internal" || !cfg.OpsMetricsAuth {
		t.Errorf("with a named address: hosts %q, metrics auth %v", cfg.OpsHosts, cfg.OpsMetricsAuth)
	}
	cfg = load(map[string]string{"OPS_ADDR": "[::1]:9090", "OPS_HOSTS": "status.example.com, 10.0.0.7"})
	if strings.Join(cfg.OpsHosts, ",") != "status.example.com,10.0.0.7" {
		t.Errorf("OPS_HOSTS %q", cfg.OpsHosts)
	}
	if cfg := load(map[string]string{"MAIL_ON_FAILURE": "restart", "PURGE_ON_FAILURE": "ignore"}); cfg.MailOnFailure != hosted.Restart || cfg.PurgeOnFailure != hosted.Ignore {
		t.Errorf("policies %v %v", cfg.MailOnFailure, cfg.PurgeOnFailure)
	}
	if cfg := load(nil); cfg.MailOnFailure != hosted.StopHost || cfg.PurgeOnFailure != hosted.StopHost {
		t.Errorf("default policies %v %v, want stop", cfg.MailOnFailure, cfg.PurgeOnFailure)
	}
}

// OPS_INSECURE lets an exposed ops listener without a token start, and the
// start says so loudly.
func TestOpsInsecureWarns(t *testing.T) {
	kv := map[string]string{"DATABASE_URL": "postgres://localhost/x", "SMTP_URL": "smtp://localhost:25",
		"OPS_ADDR": "0.0.0.0:0", "OPS_INSECURE": "true"}
	cfg, _, err := loadConfig(newFlagSet(), nil, env(kv), needs{smtp: true}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	warnInsecure(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "INSECURE") {
		t.Fatalf("no loud warning: %q", logs.String())
	}
	logs.Reset()
	kv["OPS_TOKEN"] = "0123456789abcdef0123"
	cfg, _, _ = loadConfig(newFlagSet(), nil, env(kv), needs{smtp: true}, &bytes.Buffer{})
	warnInsecure(cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if logs.Len() != 0 {
		t.Fatalf("warned with a token: %q", logs.String())
	}
}

// Secrets given in the environment are not shown as flag defaults by -h.
func TestUsageShowsNoSecret(t *testing.T) {
	kv := map[string]string{"DATABASE_URL": "postgres://u:dbsecret@localhost/x", "SMTP_URL": "smtp://u:hunter2@localhost:25",
		"OPS_TOKEN": "tokensecret-0123456789"}
	var out bytes.Buffer
	_, _, err := loadConfig(newFlagSet(), []string{"-h"}, env(kv), needs{smtp: true}, &out)
	if err == nil {
		t.Fatal("-h gave no error")
	}
	for _, secret := range []string{"dbsecret", "hunter2", "tokensecret"} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("the usage text shows %q:\n%s", secret, out.String())
		}
	}
}
