package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"signup/internal/account"
	"signup/internal/hosted"
	"signup/internal/store"
)

// Outbox is the durable queue the sender works from. *store.Outbox
// implements it; see there for the meaning of each method.
type Outbox interface {
	Lease(ctx context.Context, instance string, now, leaseUntil time.Time, limit int) ([]int64, error)
	ClaimBatch(ctx context.Context, ids []int64, instance string, now, leaseUntil time.Time) ([]store.OutboxMail, error)
	CreateTokens(ctx context.Context, tokens []account.Token, now time.Time) error
	ExtendLease(ctx context.Context, ids []int64, instance string, leaseUntil time.Time) (int64, error)
	MarkSentBatch(ctx context.Context, ids []int64, instance string, now time.Time) ([]int64, error)
	Retry(ctx context.Context, id int64, instance string, next time.Time, lastErr string) (bool, error)
	MarkFailed(ctx context.Context, id int64, instance string, lastErr string) (bool, error)
	Release(ctx context.Context, instance string, ids []int64, now time.Time) (int64, error)
	LockInstance(ctx context.Context, instance string) (*store.InstanceLock, error)
}

var _ Outbox = (*store.Outbox)(nil)

// Config configures a Sender. Fields marked required have no default; the
// others are filled by New when zero.
type Config struct {
	// Outbox holds the mail to send (db.Outbox()). Required.
	Outbox Outbox
	// Queue carries outbox ids to the workers: the signup handlers offer
	// new rows to it, the sweep feeds it due ones. Its capacity bounds how
	// many rows one sweep leases. Required, with a capacity of at least 1.
	Queue *hosted.Queue[Job]
	// SMTP is the server to send through, from ParseSMTPURL(SMTP_URL).
	// Required.
	SMTP SMTPServer
	// TLSConfig is the client TLS configuration for STARTTLS and smtps, for
	// instance to trust a private CA through RootCAs. It is cloned; an empty
	// ServerName becomes SMTP.Host. Default: the system roots, TLS 1.2 or
	// later.
	TLSConfig *tls.Config
	// From is the sender, MAIL_FROM: "no-reply@example.com" or
	// "Example <no-reply@example.com>". Default "no-reply@localhost".
	From string
	// BaseURL is the site's public URL (BASE_URL); links in email start
	// with it and Message-IDs end with its host. Required, http or https.
	BaseURL *url.URL
	// TokenTTL is how long a confirmation or email-change link stays
	// valid. Default 24h.
	TokenTTL time.Duration
	// ResetTTL is how long a password-reset link stays valid (RESET_TTL).
	// Default 1h.
	ResetTTL time.Duration
	// InactiveWarning is how long after the dormancy warning an account is
	// deleted (INACTIVE_WARNING), to tell the date in that warning.
	// Default 168h.
	InactiveWarning time.Duration
	// Workers is the number of goroutines sending, each over its own SMTP
	// connection. Default 4.
	Workers int
	// Batch is the most queued rows a worker takes at once: it claims
	// them, stores their tokens and records them sent with one statement
	// each, and sends them one by one over its connection. A worker takes
	// no more than its share of what is queued, so a short queue is still
	// spread over all workers. The rows of a batch are leased from its
	// claim; a batch that runs long records what it sent and renews the
	// rest's leases. Default 32.
	Batch int
	// SweepEvery is how often the outbox is searched for due rows the
	// channel does not carry: missed notifications, retries another
	// instance scheduled, leases of dead processes. (Retries this instance
	// scheduled get a sweep of their own when they fall due.) Default 5s.
	SweepEvery time.Duration
	// SweepBatch is the most rows one sweep leases (fewer when the queue
	// has less room). While a backlog lasts, the next sweep follows as soon
	// as the workers have taken half a batch, so this bounds how much work
	// one instance holds, not how fast it sends. Default 100.
	SweepBatch int
	// Lease is how long a row leased or claimed by this instance stays
	// reserved to it, at most. The sender holds an instance lock in
	// PostgreSQL for as long as it runs; when the process dies the lock
	// goes with its session, and other instances take its rows at their
	// next sweep, without waiting for the lease. Lease is the backstop for
	// a process that is alive but stuck, or whose death the server has not
	// noticed yet. It must cover a whole attempt: at least twice
	// SendTimeout. Default 1m.
	Lease time.Duration
	// RetryMin and RetryMax bound the wait before retrying after a
	// temporary failure: RetryMin after the first attempt, doubling each
	// time up to RetryMax, with jitter. Defaults 5s and 1h.
	RetryMin, RetryMax time.Duration
	// MaxAttempts is how many attempts a row gets before it is marked
	// failed. Default 12 (about two hours of retries with the default
	// backoff).
	MaxAttempts int
	// SendTimeout bounds one attempt: connecting (when needed) and
	// delivering one message. Default 30s.
	SendTimeout time.Duration
	// Instance names this process in the leases it takes and in its
	// instance lock; it must differ between processes sharing a database
	// at the same time. A process that starts with the id of a dead one
	// (the same pid after a container restart) takes that one's rows at
	// Start. Default "hostname-pid".
	Instance string
	// Now is the clock for the times written to the database and the
	// Date header. Default time.Now.
	Now func() time.Time
	// Logger receives one line per outcome and lifecycle events, never a
	// token or a link. Default slog.Default().
	Logger *slog.Logger
	// OnResult, when set, is called by the workers after each attempt is
	// settled (tests wait on it instead of sleeping). It must not block.
	OnResult func(Result)
	// Observer, when set, hears of queue waits and attempts, for metrics.
	Observer Observer
}

// Job is an outbox row offered to the sender's queue.
type Job struct {
	// ID is the outbox row's id.
	ID int64
	// Queued is when the job was put in the queue, to measure how long it
	// waited there; zero when unknown.
	Queued time.Time
}

// NewJob returns the job for outbox row id, queued now.
func NewJob(id int64) Job { return Job{ID: id, Queued: time.Now()} }

// Observer hears what the sender does, for metrics. Its methods are called
// by the workers and must not block.
type Observer interface {
	// Dequeued is called when a worker takes a job from the queue, with how
	// long the job waited there (jobs with no Queued time are not told).
	Dequeued(wait time.Duration)
	// Attempted is called once an attempt is settled, with its outcome and
	// how long the attempt took (rendering and SMTP).
	Attempted(kind account.MailKind, outcome Outcome, took time.Duration)
}

// Defaults for zero Config fields.
const (
	DefaultFrom            = "no-reply@localhost"
	DefaultTokenTTL        = 24 * time.Hour
	DefaultInactiveWarning = 168 * time.Hour
	DefaultWorkers         = 4
	DefaultBatch           = 32
	DefaultSweepEvery      = 5 * time.Second
	DefaultSweepBatch      = 100
	DefaultLease           = time.Minute
	DefaultRetryMin        = 5 * time.Second
	DefaultRetryMax        = time.Hour
	DefaultMaxAttempts     = 12
	DefaultSendTimeout     = 30 * time.Second
)

// withDefaults fills zero fields; it is the one place defaults live.
func (c Config) withDefaults() Config {
	if c.From == "" {
		c.From = DefaultFrom
	}
	if c.TokenTTL == 0 {
		c.TokenTTL = DefaultTokenTTL
	}
	if c.ResetTTL == 0 {
		c.ResetTTL = account.DefaultResetTTL
	}
	if c.InactiveWarning == 0 {
		c.InactiveWarning = DefaultInactiveWarning
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.Batch == 0 {
		c.Batch = DefaultBatch
	}
	if c.SweepEvery == 0 {
		c.SweepEvery = DefaultSweepEvery
	}
	if c.SweepBatch == 0 {
		c.SweepBatch = DefaultSweepBatch
	}
	if c.Lease == 0 {
		c.Lease = DefaultLease
	}
	if c.RetryMin == 0 {
		c.RetryMin = DefaultRetryMin
	}
	if c.RetryMax == 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.SendTimeout == 0 {
		c.SendTimeout = DefaultSendTimeout
	}
	if c.Instance == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "localhost"
		}
		c.Instance = host + "-" + strconv.Itoa(os.Getpid())
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// validate checks a Config with its defaults filled and returns the parsed
// From address.
func (c Config) validate() (*mail.Address, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Outbox == nil {
		bad("Outbox is required")
	}
	if c.Queue == nil {
		bad("Queue is required")
	} else if c.Queue.Cap() < 1 {
		bad("Queue needs a capacity of at least 1, got %d", c.Queue.Cap())
	}
	if c.SMTP.Host == "" || c.SMTP.Port < 1 || c.SMTP.Port > 65535 {
		bad("SMTP needs a host and a port; parse SMTP_URL with ParseSMTPURL")
	}
	from, err := parseFrom(c.From)
	if err != nil {
		bad("From %w", err)
	}
	switch {
	case c.BaseURL == nil:
		bad("BaseURL is required")
	case c.BaseURL.Scheme != "http" && c.BaseURL.Scheme != "https", c.BaseURL.Host == "":
		bad("BaseURL %q must be an absolute http or https URL", c.BaseURL.Redacted())
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"TokenTTL", c.TokenTTL}, {"ResetTTL", c.ResetTTL}, {"InactiveWarning", c.InactiveWarning}, {"SweepEvery", c.SweepEvery},
		{"Lease", c.Lease}, {"RetryMin", c.RetryMin}, {"RetryMax", c.RetryMax}, {"SendTimeout", c.SendTimeout},
	} {
		if d.v < 0 {
			bad("%s must be positive, got %v", d.name, d.v)
		}
	}
	if c.RetryMin > c.RetryMax {
		bad("RetryMin %v must not exceed RetryMax %v", c.RetryMin, c.RetryMax)
	}
	if c.Lease < 2*c.SendTimeout {
		bad("Lease %v must be at least twice SendTimeout %v, or another instance may take a row still being sent", c.Lease, c.SendTimeout)
	}
	if c.Workers < 1 {
		bad("Workers must be at least 1, got %d", c.Workers)
	}
	if c.Batch < 1 {
		bad("Batch must be at least 1, got %d", c.Batch)
	}
	if c.SweepBatch < 1 {
		bad("SweepBatch must be at least 1, got %d", c.SweepBatch)
	}
	if c.MaxAttempts < 1 {
		bad("MaxAttempts must be at least 1, got %d", c.MaxAttempts)
	}
	if strings.ContainsAny(c.Instance, "\r\n") {
		bad("Instance must be one line")
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("mail: invalid config: %w", errors.Join(errs...))
	}
	return from, nil
}

// parseFrom reads MAIL_FROM as one RFC 5322 address, with or without a
// display name.
func parseFrom(s string) (*mail.Address, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, errors.New("must be one line")
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not an email address (want addr@example.com or Name <addr@example.com>)", s)
	}
	return a, nil
}

// Outcome says how an attempt ended.
type Outcome string

// The outcomes reported through Config.OnResult.
const (
	// OutcomeSent: the server accepted the message.
	OutcomeSent Outcome = "sent"
	// OutcomeRetry: a temporary failure; the row is due again later.
	OutcomeRetry Outcome = "retry"
	// OutcomeFailed: a permanent failure, or the last attempt failed.
	OutcomeFailed Outcome = "failed"
	// OutcomeInterrupted: Stop cut the attempt short; the row is released
	// and sent after the next start (or by another instance).
	OutcomeInterrupted Outcome = "interrupted"
)

// Result describes a settled attempt, for Config.OnResult.
type Result struct {
	ID      int64
	Kind    account.MailKind
	Attempt int
	Outcome Outcome
	// Err is why the attempt failed; nil when sent.
	Err error
}
