package purge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// Defaults for the zero values of Config.
const (
	DefaultSchedule             = "0 3 * * *"
	DefaultUnconfirmedRetention = 7 * 24 * time.Hour
	DefaultInactiveRetention    = 365 * 24 * time.Hour
	DefaultInactiveWarning      = 7 * 24 * time.Hour
	DefaultMaxShare             = 0.5
	DefaultBatchSize            = 1000
	DefaultStatementTimeout     = 30 * time.Second
	DefaultTokenGrace           = 24 * time.Hour
	DefaultOutboxRetention      = 30 * 24 * time.Hour
)

// SafetyFloor is the number of accounts deleted and warned up to which the
// safety limit never trips: on a small site, a purge of a few dozen
// accounts can be most of them.
const SafetyFloor = 100

// maxWait caps one wait for the next tick, so a wall clock that jumps (NTP,
// a suspended VM) is noticed within that time.
const maxWait = 15 * time.Minute

// Config configures a Purger. Zero values take the defaults above; New
// validates the result.
type Config struct {
	// Store runs the queries; required.
	Store Store
	// Schedule says when runs are due: a standard cron expression or a
	// descriptor (@daily, @every 10m), read in Location. See Schedule.
	// Default "0 3 * * *".
	Schedule string
	// Location is the time zone of Schedule. Default UTC.
	Location *time.Location

	// UnconfirmedRetention: accounts still unconfirmed this long after
	// signing up are deleted. Default 168h.
	UnconfirmedRetention time.Duration
	// InactiveRetention: confirmed accounts with no sign-in for this long
	// are deleted, after a warning. Default 8760h.
	InactiveRetention time.Duration
	// InactiveWarning: the warning is queued this long before
	// InactiveRetention runs out, and the account goes this long after it
	// was warned. Must be shorter than InactiveRetention. Default 168h.
	InactiveWarning time.Duration
	// MaxShare: a run that would delete or warn more than this share of
	// all accounts (and more than SafetyFloor) deletes and warns nothing
	// and fails, unless forced. In (0, 1]; default 0.5.
	MaxShare float64
	// TokenGrace keeps expired and used tokens this long, so an old link
	// still gets its "expired" or "already used" page rather than "invalid".
	// Default 24h.
	TokenGrace time.Duration
	// OutboxRetention keeps sent and failed outbox rows this long, for the
	// status page and for tracing a complaint. Default 720h.
	OutboxRetention time.Duration

	// BatchSize is the most rows one batch (one transaction) treats.
	// Default 1000: short transactions, so a batch holds its row locks
	// and writes its share of WAL for a few milliseconds only.
	BatchSize int
	// StatementTimeout bounds each statement of a run. Default 30s.
	StatementTimeout time.Duration
	// Pause, when positive, is waited between batches, to leave room to
	// other work and to replication. Default none.
	Pause time.Duration

	// Instance names this process in purge_runs. Default hostname-pid.
	Instance string
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// After waits on the clock, like time.After (the default). Tests pass
	// one driven by their own clock.
	After func(d time.Duration) <-chan time.Time
	// Logger receives a line per run. Default discards.
	Logger *slog.Logger
	// Observer, when set, hears of every run's outcome, for metrics.
	Observer Observer
	// AfterBatch, when set, is called after each batch with the run's
	// context: a test hook, to stop a run between batches.
	AfterBatch func(ctx context.Context, c Category)
}

// withDefaults returns c with its zero values filled in.
func (c Config) withDefaults() Config {
	if c.Schedule == "" {
		c.Schedule = DefaultSchedule
	}
	if c.Location == nil {
		c.Location = time.UTC
	}
	if c.UnconfirmedRetention == 0 {
		c.UnconfirmedRetention = DefaultUnconfirmedRetention
	}
	if c.InactiveRetention == 0 {
		c.InactiveRetention = DefaultInactiveRetention
	}
	if c.InactiveWarning == 0 {
		c.InactiveWarning = DefaultInactiveWarning
	}
	if c.MaxShare == 0 {
		c.MaxShare = DefaultMaxShare
	}
	if c.TokenGrace == 0 {
		c.TokenGrace = DefaultTokenGrace
	}
	if c.OutboxRetention == 0 {
		c.OutboxRetention = DefaultOutboxRetention
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.StatementTimeout == 0 {
		c.StatementTimeout = DefaultStatementTimeout
	}
	if c.Instance == "" {
		host, err := os.Hostname()
		if err != nil {
			host = "unknown"
		}
		c.Instance = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.After == nil {
		c.After = time.After
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// validate reports every problem with c (after withDefaults).
func (c Config) validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("Store is required"))
	}
	for _, f := range []struct {
		name string
		d    time.Duration
	}{
		{"UnconfirmedRetention", c.UnconfirmedRetention},
		{"InactiveRetention", c.InactiveRetention},
		{"InactiveWarning", c.InactiveWarning},
		{"TokenGrace", c.TokenGrace},
		{"OutboxRetention", c.OutboxRetention},
		{"StatementTimeout", c.StatementTimeout},
	} {
		if f.d < 0 {
			errs = append(errs, fmt.Errorf("negative %s (%v)", f.name, f.d))
		}
	}
	if c.InactiveWarning >= c.InactiveRetention {
		errs = append(errs, fmt.Errorf("InactiveWarning (%v) must be shorter than InactiveRetention (%v)", c.InactiveWarning, c.InactiveRetention))
	}
	if !(c.MaxShare > 0 && c.MaxShare <= 1) {
		errs = append(errs, fmt.Errorf("MaxShare is %v; want a share in (0, 1]", c.MaxShare))
	}
	if c.BatchSize < 0 {
		errs = append(errs, fmt.Errorf("negative BatchSize (%d)", c.BatchSize))
	}
	if c.Pause < 0 {
		errs = append(errs, fmt.Errorf("negative Pause (%v)", c.Pause))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("purge: invalid config: %w", err)
	}
	return nil
}
