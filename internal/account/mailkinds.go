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

// mailKind is what is particular to one kind of email. Its templates are
// web/templates/email/<kind>.txt and .html, both defining a "subject"
// block: adding a kind is a template pair and one entry in mailKinds.
type mailKind struct {
	// token, when set, is the purpose of a token minted for each email of
	// this kind, at send time; the email links to linkPath?token=….
	token    TokenPurpose
	linkPath string
	// recipient says who receives it: the account's address unless the
	// outbox row names another (the new address of an email change, the
	// old one for its notice, the address of a deleted account).
	recipient string
	// withoutAccount is true for the one kind sent with no account (the
	// goodbye of a deleted one). Any other row with no account was queued
	// only so that a request did the same work as one that sends, and is
	// dropped unsent.
	withoutAccount bool
	// deleteAfter fills DeleteAfter: the dormancy warning's deletion date.
	deleteAfter bool
}

// mailKinds is every email the product sends: one entry per kind.
var mailKinds = map[MailKind]mailKind{
	MailConfirm:           {token: PurposeConfirm, linkPath: "confirm", recipient: "the account"},
	MailSignupAttempt:     {recipient: "the account"},
	MailInactiveWarning:   {recipient: "the account", deleteAfter: true},
	MailReset:             {token: PurposeReset, linkPath: "password/reset", recipient: "the account"},
	MailEmailChange:       {token: PurposeEmailChange, linkPath: "account/email/confirm", recipient: "the new address"},
	MailEmailChangeNotice: {recipient: "the old address"},
	MailPasswordChanged:   {recipient: "the account"},
	MailAccountDeleted:    {recipient: "the deleted account's address", withoutAccount: true},
}

// MailKinds lists every kind of email, in a stable order.
func MailKinds() []MailKind {
	return []MailKind{
		MailConfirm, MailSignupAttempt, MailInactiveWarning, MailReset,
		MailEmailChange, MailEmailChangeNotice, MailPasswordChanged, MailAccountDeleted,
	}
}

// KindsWithoutAccount lists the kinds of email sent with no account. An
// outbox row of any other kind with no account is dropped unsent.
func KindsWithoutAccount() []MailKind {
	var ks []MailKind
	for _, k := range MailKinds() {
		if mailKinds[k].withoutAccount {
			ks = append(ks, k)
		}
	}
	return ks
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

// mintToken mints the token an email for l carries, valid from now for its
// purpose's lifetime: the token to put in the link and the row to store.
// ok is false for a kind that carries no token. A confirmation's token
// carries the password hash of the signup that asked for it; an email
// change's, the new address (the letter's recipient).
func mintToken(l Letter, now time.Time, ttl TokenLifetimes) (plain string, tok IssuedToken, ok bool, err error) {
	k, known := mailKinds[l.Kind]
	switch {
	case !known:
		return "", IssuedToken{}, false, fmt.Errorf("mint token: unknown mail kind %q", l.Kind)
	case k.token == "":
		return "", IssuedToken{}, false, nil
	case l.AccountID == 0:
		return "", IssuedToken{}, false, fmt.Errorf("mint %s token: a token needs an account", l.Kind)
	}
	plain, hash, err := NewToken()
	if err != nil {
		return "", IssuedToken{}, false, fmt.Errorf("mint token: %w", err)
	}
	tok = IssuedToken{Hash: hash, AccountID: l.AccountID, Purpose: k.token, CreatedAt: now, ExpiresAt: now.Add(ttl.Of(k.token))}
	switch k.token {
	case PurposeConfirm:
		tok.PasswordHash = l.PasswordHash
	case PurposeEmailChange:
		tok.Email = l.To
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
