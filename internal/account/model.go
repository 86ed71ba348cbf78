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
	// MailReset carries a link that sets a new password.
	MailReset MailKind = "reset"
	// MailEmailChange goes to a new address and carries the link that
	// moves the account to it.
	MailEmailChange MailKind = "email_change"
	// MailEmailChangeNotice tells the old address that a move to a new one
	// was asked for.
	MailEmailChangeNotice MailKind = "email_change_notice"
	// MailPasswordChanged tells the owner that the password was changed.
	MailPasswordChanged MailKind = "password_changed"
	// MailAccountDeleted says goodbye to the address of a deleted account.
	MailAccountDeleted MailKind = "account_deleted"
)

// Session is a signed-in browser. Only the hash of its token is stored.
type Session struct {
	Hash              []byte
	AccountID         int64
	CreatedAt         time.Time
	ExpiresAt         time.Time // idle expiry, never after AbsoluteExpiresAt
	AbsoluteExpiresAt time.Time
	// UserAgent is the browser's User-Agent header, cut to 512 bytes.
	UserAgent string
}

// SessionInfo is a live session as the account page lists it.
type SessionInfo struct {
	// ID identifies the session in the revoke form; it is not its token.
	ID         int64
	CreatedAt  time.Time
	LastUsedAt time.Time
	// Browser is a summary of the User-Agent: "Firefox on Linux".
	Browser string
	// Current is true for the session asking.
	Current bool
}

// StoredSession is a live session as the store keeps it.
type StoredSession struct {
	ID         int64
	Hash       []byte
	CreatedAt  time.Time
	LastUsedAt time.Time
	UserAgent  string
}

// SignupResult says what a signup transaction did.
type SignupResult struct {
	AccountID int64
	// OutboxID is the email queued: a confirmation for a new (or still
	// unconfirmed) account, a "someone tried to sign up" note otherwise.
	OutboxID int64
	Kind     MailKind
	// Held is true when the address's mail limits held the email back: the
	// row is queued all the same, with no account, and dropped unsent.
	Held bool
	// Existing is true when the address already had an account.
	Existing bool
}

// TokenState is what a token's link leads to, before it is used.
type TokenState struct {
	AccountID int64
	// Email is the account's address; for an email change, the new one is
	// NewEmail.
	Email    string
	NewEmail string
	// HasPassword is true for a confirmation that carries its signup's
	// password; false when the person must choose one.
	HasPassword bool
}

// Repository is the storage the domain needs. Times come from the caller's
// clock. Implementations return ErrNotFound, ErrEmailTaken and the Token
// errors of this package where they apply.
type Repository interface {
	// Signup creates an account with a confirmation in the outbox, in one
	// transaction, the confirmation carrying passwordHash. When the address
	// is taken it creates nothing but queues MailSignupAttempt (confirmed
	// owner) or MailConfirm with passwordHash (unconfirmed one) for the
	// existing account instead. The mail is queued only when the address's
	// limits allow (turn for a confirmation, attempt for the note); the
	// request counts against them either way.
	Signup(ctx context.Context, email, passwordHash string, now time.Time, turn, attempt MailTurn) (SignupResult, error)
	// QueueForAddress queues kind for the account with this address
	// (only if unconfirmed, when onlyUnconfirmed) when turn allows it. It
	// does the same work whether or not there is such an account and
	// whether or not turn allows: a row is queued in every case, and one
	// with no account is dropped unsent. ok is true when the row is for an
	// account.
	QueueForAddress(ctx context.Context, kind MailKind, email string, onlyUnconfirmed bool, now time.Time, turn MailTurn) (outboxID int64, ok bool, err error)
	// AccountByEmail finds an account by address, case-insensitively.
	AccountByEmail(ctx context.Context, email string) (Account, error)
	// AccountByID finds an account by id.
	AccountByID(ctx context.Context, id int64) (Account, error)
	// CheckToken reports what a live token of purpose leads to, without
	// using it: ErrTokenInvalid, ErrTokenUsed, ErrTokenExpired,
	// ErrTokenSuperseded, or ErrAlreadyConfirmed for a confirmation of a
	// confirmed account.
	CheckToken(ctx context.Context, purpose TokenPurpose, hash []byte, now time.Time) (TokenState, error)
	// Confirm spends a confirmation token and confirms its account with the
	// token's password hash, or with passwordHash when the token carries
	// none. Every other confirmation of the account is dead from then on.
	Confirm(ctx context.Context, hash []byte, passwordHash string, now time.Time) (Account, error)
	// Reset spends a reset token: it sets passwordHash, confirms the
	// account if it was not, ends every session, kills every other reset
	// token and queues MailPasswordChanged.
	Reset(ctx context.Context, hash []byte, passwordHash string, now time.Time) (acct Account, outboxID int64, err error)
	// ChangePassword sets passwordHash, ends every session of the account
	// but keepSession, and queues MailPasswordChanged.
	ChangePassword(ctx context.Context, accountID int64, passwordHash string, keepSession []byte, now time.Time) (outboxID int64, err error)
	// RequestEmailChange queues MailEmailChange to newEmail (when turn
	// allows, and the address has no account) and MailEmailChangeNotice to
	// the account's current address. It returns the ids queued.
	RequestEmailChange(ctx context.Context, accountID int64, newEmail string, now time.Time, turn MailTurn) ([]int64, error)
	// ConfirmEmailChange spends an email-change token and moves its account
	// to the token's address: ErrEmailTaken when that address has an
	// account by now.
	ConfirmEmailChange(ctx context.Context, hash []byte, now time.Time) (Account, error)
	// DeleteAccount deletes the account and everything of it (sessions,
	// tokens, mail not sent yet) and queues MailAccountDeleted to its
	// address.
	DeleteAccount(ctx context.Context, accountID int64, now time.Time) (outboxID int64, err error)
	// SignedIn records a sign-in: last_seen_at moves forward when it is older
	// than now-every, and a pending dormancy warning is cleared; a
	// replacement password hash is stored when rehash is not empty.
	SignedIn(ctx context.Context, accountID int64, now time.Time, every time.Duration, rehash string) error
	// CreateSession stores a new session.
	CreateSession(ctx context.Context, s Session) error
	// SessionAccount returns the account of a live session and moves its idle
	// expiry to now+idle (capped by the absolute expiry).
	SessionAccount(ctx context.Context, hash []byte, now time.Time, idle time.Duration) (Account, error)
	// Sessions lists the live sessions of an account, newest first.
	Sessions(ctx context.Context, accountID int64, now time.Time) ([]StoredSession, error)
	// DeleteSession removes a session; a missing one is not an error.
	DeleteSession(ctx context.Context, hash []byte) error
	// DeleteSessionByID removes the account's session with this id.
	DeleteSessionByID(ctx context.Context, accountID, id int64) error
	// DeleteOtherSessions removes every session of the account but keep.
	DeleteOtherSessions(ctx context.Context, accountID int64, keep []byte) (int64, error)
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
