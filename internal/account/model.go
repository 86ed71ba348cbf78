package account

import (
	"context"
	"time"
)

// Account is a person's account.
type Account struct {
	ID           int64
	Email        string
	PasswordHash string
	CreatedAt    time.Time
	ConfirmedAt  time.Time // zero until confirmed
	LastSeenAt   time.Time // last sign-in or confirmation; zero until confirmed
}

// Confirmed reports whether the address was confirmed.
func (a Account) Confirmed() bool { return !a.ConfirmedAt.IsZero() }

// MailKind names an email the outbox can hold.
type MailKind string

// The emails the product sends.
const (
	// MailConfirm carries a link that confirms the address.
	MailConfirm MailKind = "confirm"
	// MailSignupAttempt tells an account's owner that someone tried to sign
	// up with their address.
	MailSignupAttempt MailKind = "signup_attempt"
	// MailInactiveWarning warns a dormant account that it will be deleted.
	MailInactiveWarning MailKind = "inactive_warning"
)

// Session is a signed-in browser. Only the hash of its token is stored.
type Session struct {
	Hash              []byte
	AccountID         int64
	CreatedAt         time.Time
	ExpiresAt         time.Time // idle expiry, never after AbsoluteExpiresAt
	AbsoluteExpiresAt time.Time
}

// SignupResult says what a signup transaction did.
type SignupResult struct {
	AccountID int64
	// OutboxID is the email queued: a confirmation for a new (or still
	// unconfirmed) account, a "someone tried to sign up" note otherwise.
	OutboxID int64
	Kind     MailKind
	// Existing is true when the address already had an account.
	Existing bool
}

// Repository is the storage the domain needs. Times come from the caller's
// clock. Implementations return ErrNotFound, ErrEmailTaken and the Token
// errors of this package where they apply.
type Repository interface {
	// Signup creates an account with a confirmation in the outbox, in one
	// transaction. When the address is taken it creates nothing but queues
	// MailSignupAttempt (confirmed owner) or MailConfirm (unconfirmed one)
	// for the existing account instead.
	Signup(ctx context.Context, email, passwordHash string, now time.Time) (SignupResult, error)
	// QueueConfirmation queues a confirmation email for the unconfirmed
	// account with this address. ok is false (and nothing is queued) when
	// there is no such account or it is already confirmed.
	QueueConfirmation(ctx context.Context, email string, now time.Time) (outboxID int64, ok bool, err error)
	// AccountByEmail finds an account by address, case-insensitively.
	AccountByEmail(ctx context.Context, email string) (Account, error)
	// UseToken spends a confirmation token and confirms its account.
	// A token of an account confirmed by another token is reported as used.
	UseToken(ctx context.Context, hash []byte, now time.Time) (accountID int64, err error)
	// SignedIn records a sign-in: last_seen_at moves forward when it is older
	// than now-every, and a pending dormancy warning is cleared; a
	// replacement password hash is stored when rehash is not empty.
	SignedIn(ctx context.Context, accountID int64, now time.Time, every time.Duration, rehash string) error
	// CreateSession stores a new session.
	CreateSession(ctx context.Context, s Session) error
	// SessionAccount returns the account of a live session and moves its idle
	// expiry to now+idle (capped by the absolute expiry).
	SessionAccount(ctx context.Context, hash []byte, now time.Time, idle time.Duration) (Account, error)
	// DeleteSession removes a session; a missing one is not an error.
	DeleteSession(ctx context.Context, hash []byte) error
}

// Notifier hears of emails queued in the outbox after their transaction
// committed, so the sender can pick them up at once. It must not block.
type Notifier interface {
	Queued(outboxID int64)
}

// NotifierFunc adapts a function to Notifier.
type NotifierFunc func(outboxID int64)

// Queued calls f.
func (f NotifierFunc) Queued(outboxID int64) { f(outboxID) }

// Observer hears of what the Service did, after it is committed, for
// metrics. Its methods must not block.
type Observer interface {
	// SignedUp is called after a signup transaction committed, for a new
	// address and for a taken one (res.Existing) alike.
	SignedUp(res SignupResult)
	// Confirmed is called after a confirmation token was spent.
	Confirmed()
	// SignedIn is called after a session was opened.
	SignedIn()
}

// nopObserver is the Observer of a Service configured without one.
type nopObserver struct{}

func (nopObserver) SignedUp(SignupResult) {}
func (nopObserver) Confirmed()            {}
func (nopObserver) SignedIn()             {}
