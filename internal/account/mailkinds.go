package account

import (
	"fmt"
	"strings"
	"time"
)

// TokenPurpose names what a token sent by email lets its holder do.
type TokenPurpose string

// The purposes of tokens.
const (
	// PurposeConfirm confirms an address, setting the password of the
	// signup that asked for it.
	PurposeConfirm TokenPurpose = "confirm"
	// PurposeReset sets a new password.
	PurposeReset TokenPurpose = "reset"
	// PurposeEmailChange moves an account to a new address.
	PurposeEmailChange TokenPurpose = "email_change"
)

// SupersedesOlder reports whether a new token of purpose p makes the older
// live ones of the same account and purpose dead ("a newer link was
// sent"). Confirmations do not: each signup's link must confirm with that
// signup's password, whoever signed up after it; once the account is
// confirmed, all of them are dead.
func (p TokenPurpose) SupersedesOlder() bool { return p != PurposeConfirm }

// MailSpec is what is particular to one kind of email.
type MailSpec struct {
	// Purpose is the token the email carries; empty for none.
	Purpose TokenPurpose
	// LinkPath is the site path of the email's link, to which "?token="
	// and the token are added.
	LinkPath string
	// Recipient says who receives it: the account's address unless the
	// outbox row names another (the new address of an email change, the
	// old one for its notice, the address of a deleted account).
	Recipient string
	// WithoutAccount is true for the one kind sent with no account (the
	// goodbye of a deleted one). Any other row with no account was queued
	// only so that a request did the same work as one that sends, and is
	// dropped unsent.
	WithoutAccount bool
}

// mailSpecs is every email the product sends: one row per kind.
var mailSpecs = map[MailKind]MailSpec{
	MailConfirm:           {Purpose: PurposeConfirm, LinkPath: "/confirm", Recipient: "the account"},
	MailSignupAttempt:     {Recipient: "the account"},
	MailInactiveWarning:   {Recipient: "the account"},
	MailReset:             {Purpose: PurposeReset, LinkPath: "/password/reset", Recipient: "the account"},
	MailEmailChange:       {Purpose: PurposeEmailChange, LinkPath: "/account/email/confirm", Recipient: "the new address"},
	MailEmailChangeNotice: {Recipient: "the old address"},
	MailPasswordChanged:   {Recipient: "the account"},
	MailAccountDeleted:    {Recipient: "the deleted account's address", WithoutAccount: true},
}

// Spec returns what is particular to kind; ok is false for an unknown kind.
func Spec(kind MailKind) (spec MailSpec, ok bool) {
	spec, ok = mailSpecs[kind]
	return spec, ok
}

// MailKinds lists every kind of email, in a stable order.
func MailKinds() []MailKind {
	return []MailKind{
		MailConfirm, MailSignupAttempt, MailInactiveWarning, MailReset,
		MailEmailChange, MailEmailChangeNotice, MailPasswordChanged, MailAccountDeleted,
	}
}

// TokenLifetimes says how long each purpose's links work.
type TokenLifetimes struct {
	// Confirm is the life of a confirmation link (default 24h).
	Confirm time.Duration
	// Reset is the life of a password-reset link (RESET_TTL, default 1h).
	Reset time.Duration
	// EmailChange is the life of an email-change link (default 24h).
	EmailChange time.Duration
}

// Defaults for TokenLifetimes.
const (
	DefaultConfirmTTL     = 24 * time.Hour
	DefaultResetTTL       = time.Hour
	DefaultEmailChangeTTL = 24 * time.Hour
)

// WithDefaults fills zero lifetimes with the defaults.
func (l TokenLifetimes) WithDefaults() TokenLifetimes {
	if l.Confirm <= 0 {
		l.Confirm = DefaultConfirmTTL
	}
	if l.Reset <= 0 {
		l.Reset = DefaultResetTTL
	}
	if l.EmailChange <= 0 {
		l.EmailChange = DefaultEmailChangeTTL
	}
	return l
}

// Of returns the lifetime of purpose p's tokens.
func (l TokenLifetimes) Of(p TokenPurpose) time.Duration {
	l = l.WithDefaults()
	switch p {
	case PurposeReset:
		return l.Reset
	case PurposeEmailChange:
		return l.EmailChange
	}
	return l.Confirm
}

// Token is a token to store: the hash of what the email carries, and what
// it grants. The token itself is never stored.
type Token struct {
	// Hash is the SHA-256 of the token.
	Hash      []byte
	AccountID int64
	Purpose   TokenPurpose
	// PasswordHash is, for a confirmation, the password hash of the signup
	// that asked for it; empty when a resend asked for it, and the person
	// chooses a password when confirming.
	PasswordHash string
	// Email is, for an email change, the new address.
	Email     string
	ExpiresAt time.Time
}

// OutboxMail is what minting a token needs to know of an outbox row.
type OutboxMail struct {
	Kind      MailKind
	AccountID int64
	// Recipient is the address the email goes to.
	Recipient string
	// PasswordHash is the signup's password hash a confirmation carries.
	PasswordHash string
}

// MintMailToken mints the token an email of m's kind carries, valid from
// now for its purpose's lifetime. It returns the token to put in the link
// and the row to store; ok is false for a kind that carries no token.
func MintMailToken(m OutboxMail, now time.Time, ttl TokenLifetimes) (plain string, tok Token, ok bool, err error) {
	spec, known := Spec(m.Kind)
	if !known {
		return "", Token{}, false, fmt.Errorf("mint token: unknown mail kind %q", m.Kind)
	}
	if spec.Purpose == "" {
		return "", Token{}, false, nil
	}
	plain, hash, err := NewToken()
	if err != nil {
		return "", Token{}, false, fmt.Errorf("mint token: %w", err)
	}
	tok = Token{Hash: hash, AccountID: m.AccountID, Purpose: spec.Purpose, ExpiresAt: now.Add(ttl.Of(spec.Purpose))}
	switch spec.Purpose {
	case PurposeConfirm:
		tok.PasswordHash = m.PasswordHash
	case PurposeEmailChange:
		tok.Email = m.Recipient
	}
	return plain, tok, true, nil
}

// MailLimits bound the mail a visitor can make us send to one address.
type MailLimits struct {
	// Cooldown is the least time between two emails of one kind to one
	// address (MAIL_COOLDOWN, default 1m).
	Cooldown time.Duration
	// DailyCap is the most visitor-triggered emails of all kinds one address
	// gets in a day (10).
	DailyCap int
}

// Defaults for MailLimits.
const (
	DefaultMailCooldown = time.Minute
	DefaultMailDailyCap = 10
)

// MailTurn asks for one visitor-triggered email to an address: it is sent
// only if the address's limits allow it, and the request counts either way.
type MailTurn struct {
	// Address is the limit's key: the normalized address in lower case.
	Address string
	// Kind is the limit's kind (the email's kind; a signup's confirmation
	// counts as "signup").
	Kind string
	// Cooldown is the least time since the last email of Kind; 0 for none.
	Cooldown time.Duration
	// DailyCap is the most emails of all kinds in the day.
	DailyCap int
}

// LimitKey is the key the limits of an address are counted under: the
// normalized address in lower case, or, for input that is no address, the
// trimmed input in lower case. " User@X.com " and "user@x.com" share one.
func LimitKey(email string) string {
	if addr, err := NormalizeEmail(email); err == nil {
		return strings.ToLower(addr)
	}
	return strings.ToLower(strings.TrimSpace(email))
}

// turn is a MailTurn for kind to addr under l. A signup's confirmation
// skips the cooldown: someone who retypes their password is not made to
// wait (the daily cap still holds).
func (l MailLimits) turn(addr, kind string) MailTurn {
	t := MailTurn{Address: LimitKey(addr), Kind: kind, Cooldown: l.Cooldown, DailyCap: l.DailyCap}
	if kind == limitSignup {
		t.Cooldown = 0
	}
	return t
}

// limitSignup is the limit kind of a signup's confirmation.
const limitSignup = "signup"
