package purge

import (
	"context"
	"time"
)

// Store is what the purger needs from storage; internal/store implements it.
// Times are the purger's clock, passed in; the store never reads the
// database's now().
type Store interface {
	// Lock takes the purge lock without waiting and holds it on a dedicated
	// connection until the Session is released. ok is false when another
	// session (any instance) holds it.
	Lock(ctx context.Context, opts LockOptions) (s Session, ok bool, err error)
	// TickDone reports whether a run for a scheduled tick at or after tick
	// finished without error (dry and manual runs do not count).
	TickDone(ctx context.Context, tick time.Time) (bool, error)
	// StartRun records a run as started and returns its id. Fields of r
	// other than Instance, Scheduled, StartedAt, DryRun and Forced are
	// ignored.
	StartRun(ctx context.Context, r Report) (int64, error)
	// FinishRun records r's FinishedAt, Counts and Error on run r.ID.
	FinishRun(ctx context.Context, r Report) error
	// LastRuns returns the n most recently started runs, newest first.
	LastRuns(ctx context.Context, n int) ([]Report, error)
}

// LockOptions shape a Session.
type LockOptions struct {
	// StatementTimeout bounds each statement (SET LOCAL statement_timeout).
	StatementTimeout time.Duration
}

// Session is a held purge lock and the statements run under it.
type Session interface {
	// Others counts the sessions of other clients of the database that
	// started a statement after since (zero: at any time), and returns the
	// database's clock, to be given as since the next time. The purge
	// rests after a batch only when others worked while it ran.
	Others(ctx context.Context, since time.Time) (n int, now time.Time, err error)
	// Candidates counts the accounts a run with these cut-offs would delete
	// or warn, and all accounts, for the safety limit.
	Candidates(ctx context.Context, cut Cutoffs) (Candidates, error)
	// Count counts, with a SELECT that takes no row lock, the rows of
	// category c a run with these cut-offs would treat: the same
	// predicates as Batch, leaving out rows that go by cascade with the
	// accounts the run deletes. It is what a dry run reports.
	Count(ctx context.Context, c Category, cut Cutoffs) (int64, error)
	// Batch treats at most limit rows of category c, from position from
	// onward (the zero Cursor starts), in one short transaction (or in the
	// dry-run transaction), and says where the next batch starts.
	Batch(ctx context.Context, c Category, cut Cutoffs, from Cursor, limit int) (Batch, error)
	// Release frees the lock and gives the connection back. It is safe to
	// call twice.
	Release(ctx context.Context) error
}

// Category is a kind of row a run deletes (or, for Warned, warns).
type Category string

// The categories, in the order a run treats them.
const (
	// Unconfirmed accounts older than the unconfirmed retention, with no
	// mail pending or being sent.
	Unconfirmed Category = "unconfirmed"
	// Dormant accounts warned longer ago than the warning period, not seen
	// since, with no mail pending or being sent (the warning went out).
	Dormant Category = "dormant"
	// Warned counts dormant accounts warned in this run: warned_at is set
	// and an inactive_warning mail is queued, in one transaction.
	Warned Category = "warned"
	// Sessions past their expiry.
	Sessions Category = "sessions"
	// Tokens expired, or used, longer ago than the token grace.
	Tokens Category = "tokens"
	// Outbox rows sent, or failed, longer ago than the outbox retention.
	Outbox Category = "outbox"
)

// isAccounts is true for the categories that delete or warn accounts: what
// the safety limit and Options.Max count.
func (c Category) isAccounts() bool { return c == Unconfirmed || c == Dormant || c == Warned }

// Categories lists every category in the order a run treats them: deletions
// of accounts first (their dependents cascade, so later categories find
// less), then warnings, then the other tables.
var Categories = []Category{Unconfirmed, Dormant, Warned, Sessions, Tokens, Outbox}

// Cutoffs are the moments a run's policy compares rows with, all computed
// from the purger's clock at the start of the run.
type Cutoffs struct {
	// Now is the run's clock reading: sessions expiring at or before it go,
	// and warned accounts get warned_at = Now.
	Now time.Time
	// Unconfirmed: accounts unconfirmed and created before it go.
	Unconfirmed time.Time
	// Warn: confirmed accounts last seen before it, not yet warned, are
	// warned.
	Warn time.Time
	// Dormant: accounts warned before it and not seen since go.
	Dormant time.Time
	// Tokens: tokens that expired, or were used, at or before it go.
	Tokens time.Time
	// Outbox: outbox rows sent (sent_at), or failed (created_at), before
	// it go.
	Outbox time.Time
}

// Cursor is where a category's next batch starts: a keyset position the
// store fills in and the purger hands back unchanged. The zero Cursor is the
// start.
type Cursor struct {
	// Arm is the store's sub-query for the category, when it needs more
	// than one.
	Arm int
	// At, ID and Key are the sort key of the last row of the last batch.
	At  time.Time
	ID  int64
	Key []byte
}

// Batch is what one Session.Batch did.
type Batch struct {
	// N is how many rows were deleted (or accounts warned).
	N int64
	// Next is where the next batch starts.
	Next Cursor
	// Done is true when the category has no more candidates.
	Done bool
}

// Candidates are the accounts a run would delete or warn, against all
// accounts.
type Candidates struct {
	Unconfirmed, Dormant, Warn, Total int64
}

// Affected is how many accounts the run would delete or warn: what the
// safety limit weighs.
func (c Candidates) Affected() int64 { return c.Unconfirmed + c.Dormant + c.Warn }

// Counts are rows deleted (or, in a dry run, that would be) per category;
// Warned counts warnings queued. Stored as JSON in purge_runs.counts.
type Counts struct {
	Unconfirmed int64 `json:"unconfirmed"`
	Dormant     int64 `json:"dormant"`
	Warned      int64 `json:"warned"`
	Sessions    int64 `json:"sessions"`
	Tokens      int64 `json:"tokens"`
	Outbox      int64 `json:"outbox"`
}

// Get returns the count of category c.
func (c Counts) Get(cat Category) int64 { return *c.field(cat) }

func (c *Counts) add(cat Category, n int64) { *c.field(cat) += n }

func (c *Counts) field(cat Category) *int64 {
	switch cat {
	case Unconfirmed:
		return &c.Unconfirmed
	case Dormant:
		return &c.Dormant
	case Warned:
		return &c.Warned
	case Sessions:
		return &c.Sessions
	case Tokens:
		return &c.Tokens
	case Outbox:
		return &c.Outbox
	}
	panic("purge: unknown category " + string(cat))
}

// Report is the record of one run, as kept in purge_runs.
type Report struct {
	ID       int64
	Instance string
	// Scheduled is the schedule tick the run served; zero for a manual run.
	Scheduled  time.Time
	StartedAt  time.Time
	FinishedAt time.Time // zero while running, or if the process died
	DryRun     bool
	Forced     bool
	Counts     Counts
	// Error is why the run failed or stopped early; empty on success.
	Error string
	// Rested is how long the run rested between batches to let other
	// clients of the database work (see pace.go); not stored.
	Rested time.Duration
}
