package mail_test

import (
	"strings"
	"testing"
	"time"

	"signup/internal/account"
	"signup/internal/hosted"
	"signup/internal/mail"
	"signup/internal/store"
)

func TestConfigValidation(t *testing.T) {
	valid := func() mail.Config {
		return mail.Config{
			Outbox:   (*store.DB)(nil).Outbox(), // never called: New does not touch the database
			Queue:    hosted.NewQueue[mail.Job](8),
			Composer: &account.Composer{},
			SMTP:     mail.SMTPServer{Host: "localhost", Port: 25},
		}
	}
	if _, err := mail.New(valid()); err != nil {
		t.Fatalf("New with only the required fields: %v", err)
	}
	for _, tc := range []struct {
		name    string
		change  func(*mail.Config)
		wantErr string
	}{
		{"no outbox", func(c *mail.Config) { c.Outbox = nil }, "Outbox is required"},
		{"no queue", func(c *mail.Config) { c.Queue = nil }, "Queue is required"},
		{"unbuffered queue", func(c *mail.Config) { c.Queue = hosted.NewQueue[mail.Job](0) }, "capacity"},
		{"no smtp", func(c *mail.Config) { c.SMTP = mail.SMTPServer{} }, "SMTP needs"},
		{"bad from", func(c *mail.Config) { c.From = "nobody" }, `From "nobody" is not an email address`},
		{"from with a line break", func(c *mail.Config) { c.From = "a@example.com\r\nBcc: b@example.com" }, "From must be one line"},
		{"no composer", func(c *mail.Config) { c.Composer = nil }, "Composer is required"},
		{"return path with a name", func(c *mail.Config) { c.ReturnPath = "Bounces <b@example.com>" }, "ReturnPath"},
		{"bad helo", func(c *mail.Config) { c.HELO = "a b" }, "HELO"},
		{"short lease", func(c *mail.Config) { c.Lease = 10 * time.Second; c.SendTimeout = 10 * time.Second }, "twice SendTimeout"},
		{"retry bounds", func(c *mail.Config) { c.RetryMin = time.Hour; c.RetryMax = time.Minute }, "RetryMin"},
		{"negative workers", func(c *mail.Config) { c.Workers = -1 }, "Workers"},
		{"negative duration", func(c *mail.Config) { c.MaxAge = -time.Hour }, "MaxAge must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid()
			tc.change(&cfg)
			_, err := mail.New(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("New = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}
