package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
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
	Lease(ctx context.Context, instance string, now, leaseUntil time.Time, limit int, checkHolders bool) ([]store.OutboxMail, error)
	ClaimBatch(ctx context.Context, ids []int64, instance string, now, leaseUntil time.Time, own bool) ([]store.OutboxMail, error)
	ExtendLease(ctx context.Context, ids []int64, instance string, leaseUntil time.Time) (int64, error)
	MarkSent(ctx context.Context, ids []int64, instance string, now time.Time) ([]int64, error)
	Retry(ctx context.Context, id int64, instance string, next time.Time, lastErr string) (bool, error)
	Requeue(ctx context.Context, ids []int64, instance string, now time.Time, lastErr string) (int64, error)
	MarkFailed(ctx context.Context, id int64, instance string, lastErr string) (bool, error)
	FailAndSuppress(ctx context.Context, id int64, instance, address, reply string, now time.Time) (bool, error)
	MarkSuppressed(ctx context.Context, id int64, instance string) (bool, error)
	Release(ctx context.Context, instance string, ids []int64, now time.Time) (int64, error)
	LockInstance(ctx context.Context, instance string) (*store.InstanceLock, error)
}

// Composer writes the email of each outbox row (the account domain's
// *account.Composer): it mints and stores tokens and renders templates.
type Composer interface {
	Compose(ctx context.Context, letters []account.Letter) ([]account.Composed, error)
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
	// Composer writes the emails. Required.
	Composer Composer
	// TLSConfig verifies the server's certificate for the verified TLS
	// levels (starttls=required, smtps, and STARTTLS when the URL carries
	// credentials): set RootCAs to the system roots plus SMTP_CA_FILE. It
	// is cloned; an empty ServerName becomes SMTP.Host. Default: the
	// system roots, TLS 1.2 or later.
	TLSConfig *tls.Config
	// HELO is the name given in EHLO (SMTP_HELO). Default: HELOName of no
	// base URL: the machine's fully qualified name, else "localhost".
	HELO string
	// From is the sender, MAIL_FROM: "no-reply@example.com" or
	// "Example <no-reply@example.com>"; Message-IDs end with its domain.
	// Default "no-reply@localhost".
	From string
	// ReturnPath is the envelope sender, where bounces go
	// (MAIL_RETURN_PATH). Default: From's address.
	ReturnPath string
	// MaxAge is how long a message may stay undelivered before it is
	// failed, whatever its attempts (MAIL_MAX_AGE). Outages spend no
	// attempts. Default 120h.
	MaxAge time.Duration
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
	// message's own temporary failure (a 4xx to RCPT or DATA): RetryMin after the first attempt, doubling each
	// time up to RetryMax, with jitter. Defaults 5s and 1h.
	RetryMin, RetryMax time.Duration
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
	// swept is the row itself when the sweep took it.
	swept *sweptRow
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
	// Blocked is called when the sender becomes blocked (with the
	// server's reply) and when it is unblocked.
	Blocked(blocked bool, reply string)
	// Suppressed is called when an address is put on the suppression
	// list.
	Suppressed()
}

// Defaults for zero Config fields.
const (
	DefaultFrom        = "no-reply@localhost"
	DefaultMaxAge      = 120 * time.Hour
	DefaultWorkers     = 4
	DefaultBatch       = 32
	DefaultSweepEvery  = 5 * time.Second
	DefaultSweepBatch  = 100
	DefaultLease       = time.Minute
	DefaultRetryMin    = 5 * time.Second
	DefaultRetryMax    = time.Hour
	DefaultSendTimeout = 30 * time.Second
)

// withDefaults fills zero fields; it is the one place defaults live.
func (c Config) withDefaults() Config {
	if c.From == "" {
		c.From = DefaultFrom
	}
	if c.MaxAge == 0 {
		c.MaxAge = DefaultMaxAge
	}
	if c.HELO == "" {
		c.HELO = HELOName(nil)
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
	if c.Composer == nil {
		bad("Composer is required")
	}
	if c.ReturnPath != "" {
		if a, err := mail.ParseAddress(c.ReturnPath); err != nil || a.Name != "" || a.Address != c.ReturnPath {
			bad("ReturnPath %q must be a bare address", c.ReturnPath)
		}
	}
	if err := validHELO(c.HELO); err != nil {
		bad("HELO %w", err)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"MaxAge", c.MaxAge}, {"SweepEvery", c.SweepEvery},
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
	// OutcomeRetry: the message's own temporary failure; the row is due
	// again later.
	OutcomeRetry Outcome = "retry"
	// OutcomeFailed: a permanent failure, or the message is older than
	// MaxAge.
	OutcomeFailed Outcome = "failed"
	// OutcomeSuppressed: the recipient is on the suppression list; nothing
	// was sent.
	OutcomeSuppressed Outcome = "suppressed"
	// OutcomeBlocked: the server refused us, not the message: the row is
	// pending again with no attempt spent, and the sender is blocked.
	OutcomeBlocked Outcome = "blocked"
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
