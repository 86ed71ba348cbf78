package account

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Config is what a Service needs. Zero durations take the defaults below.
type Config struct {
	// Repo stores accounts, tokens and sessions.
	Repo Repository
	// Hasher hashes and verifies passwords.
	Hasher *Hasher
	// Notifier hears of emails queued by a committed transaction. Optional.
	Notifier Notifier
	// Observer hears of signups, confirmations and sign-ins, for metrics.
	// Optional.
	Observer Observer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// SessionIdle ends a session that is not used for this long (default 7 days).
	SessionIdle time.Duration
	// SessionMaxAge ends a session this long after sign-in, used or not
	// (default 30 days).
	SessionMaxAge time.Duration
	// LastSeenEvery limits how often sign-ins write last_seen_at (default 1 h).
	LastSeenEvery time.Duration
	// LocalhostEmail accepts addresses @localhost: for a site that itself
	// runs on localhost (BASE_URL), where a dev inbox takes the mail.
	LocalhostEmail bool
	// MailLimits bound the mail a visitor can make us send to one address;
	// zero fields take DefaultMailCooldown and DefaultMailDailyCap.
	MailLimits MailLimits
}

// Service runs the account rules.
type Service struct {
	cfg Config
}

// NewService fills defaults and returns a Service.
func NewService(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Notifier == nil {
		cfg.Notifier = NotifierFunc(func(int64) {})
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	if cfg.SessionIdle <= 0 {
		cfg.SessionIdle = 7 * 24 * time.Hour
	}
	if cfg.SessionMaxAge <= 0 {
		cfg.SessionMaxAge = 30 * 24 * time.Hour
	}
	if cfg.SessionIdle > cfg.SessionMaxAge {
		cfg.SessionIdle = cfg.SessionMaxAge
	}
	if cfg.LastSeenEvery <= 0 {
		cfg.LastSeenEvery = time.Hour
	}
	if cfg.MailLimits.Cooldown <= 0 {
		cfg.MailLimits.Cooldown = DefaultMailCooldown
	}
	if cfg.MailLimits.DailyCap <= 0 {
		cfg.MailLimits.DailyCap = DefaultMailDailyCap
	}
	return &Service{cfg: cfg}
}

// SessionMaxAge is how long a session can live; the cookie's Max-Age.
func (s *Service) SessionMaxAge() time.Duration { return s.cfg.SessionMaxAge }

// InputError lists what is wrong with a form, by field, in words fit for the
// person who typed it.
type InputError struct {
	Fields map[string]string
}

func (e *InputError) Error() string {
	return fmt.Sprintf("account: invalid input in %d field(s)", len(e.Fields))
}

// inputError collects FieldErrors; other errors pass through.
func inputError(errs ...error) error {
	ie := &InputError{Fields: map[string]string{}}
	for _, err := range errs {
		if err == nil {
			continue
		}
		var fe *FieldError
		if !errors.As(err, &fe) {
			return err
		}
		if _, seen := ie.Fields[fe.Field]; !seen {
			ie.Fields[fe.Field] = fe.Message
		}
	}
	if len(ie.Fields) == 0 {
		return nil
	}
	return ie
}

// Signup creates an account and queues its confirmation, which carries
// this signup's password: the link confirms the account with it, whoever
// signed up for the address before or after. An address that already has
// an account gets the same answer after the same work (a password hash and
// one statement); its owner is told by email instead, or, if it is not
// confirmed yet, gets a confirmation of this signup.
func (s *Service) Signup(ctx context.Context, email, password string) (SignupResult, error) {
	addr, emailErr := s.normalizeEmail(email)
	pwErr := ValidatePassword(password, addr)
	if err := inputError(emailErr, pwErr); err != nil {
		return SignupResult{}, err
	}
	hash, err := s.cfg.Hasher.Hash(ctx, password)
	if err != nil {
		return SignupResult{}, fmt.Errorf("signup: %w", err)
	}
	lim := s.cfg.MailLimits
	res, err := s.cfg.Repo.Signup(ctx, addr, hash, s.cfg.Now(),
		lim.turn(addr, limitSignup), lim.turn(addr, string(MailSignupAttempt)))
	if err != nil {
		return SignupResult{}, fmt.Errorf("signup: %w", err)
	}
	s.queued(res.OutboxID)
	s.cfg.Observer.SignedUp(res)
	return res, nil
}

// queued tells the Notifier of the outbox rows ids (0 is none).
func (s *Service) queued(ids ...int64) {
	for _, id := range ids {
		if id != 0 {
			s.cfg.Notifier.Queued(id)
		}
	}
}

// Resend queues a fresh confirmation when the address has an unconfirmed
// account, and does nothing otherwise, after the same work; callers answer
// the same either way. The link it sends carries no password: the person
// chooses one when confirming, so a resend cannot confirm an account with
// the password of someone who signed up with another's address.
func (s *Service) Resend(ctx context.Context, email string) error {
	return s.mailAddress(ctx, email, MailConfirm, true)
}

// Forgot queues a password-reset link when the address has an account,
// confirmed or not, and does nothing otherwise, after the same work.
func (s *Service) Forgot(ctx context.Context, email string) error {
	return s.mailAddress(ctx, email, MailReset, false)
}

// mailAddress queues a visitor-triggered email of kind to the account with
// this address, within the address's limits.
func (s *Service) mailAddress(ctx context.Context, email string, kind MailKind, onlyUnconfirmed bool) error {
	addr, err := s.normalizeEmail(email)
	if err := inputError(err); err != nil {
		return err
	}
	turn := s.cfg.MailLimits.turn(addr, string(kind))
	id, _, err := s.cfg.Repo.QueueForAddress(ctx, kind, addr, onlyUnconfirmed, s.cfg.Now(), turn)
	if err != nil {
		return fmt.Errorf("queue %s: %w", kind, err)
	}
	// Every row is offered to the sender, the ones it will drop too, so
	// that the request does the same work either way.
	s.queued(id)
	return nil
}

// CheckToken reports what a link's token of purpose leads to without using
// it, for the page that asks to confirm the step. A link that cannot be
// used still tells its account's address, if it has one, to offer a new
// link.
func (s *Service) CheckToken(ctx context.Context, purpose TokenPurpose, token string) (TokenState, error) {
	hash, ok := HashToken(token)
	if !ok {
		return TokenState{}, ErrTokenInvalid
	}
	st, err := s.cfg.Repo.CheckToken(ctx, purpose, hash, s.cfg.Now())
	if err != nil {
		// st.Email, when known, fills the form that asks for a new link.
		return TokenState{Email: st.Email}, fmt.Errorf("check %s token: %w", purpose, err)
	}
	return st, nil
}

// Confirm spends a confirmation token and confirms its account with the
// password of the signup that sent the link; a link sent by a resend
// carries none, and password, which the person chose on the confirmation
// page, is set instead.
func (s *Service) Confirm(ctx context.Context, token, password string) (Account, error) {
	hash, ok := HashToken(token)
	if !ok {
		return Account{}, ErrTokenInvalid
	}
	now := s.cfg.Now()
	st, err := s.cfg.Repo.CheckToken(ctx, PurposeConfirm, hash, now)
	if err != nil {
		return Account{}, fmt.Errorf("confirm: %w", err)
	}
	var pwHash string
	if !st.HasPassword {
		if pwHash, err = s.newPasswordHash(ctx, password, st.Email); err != nil {
			return Account{}, err
		}
	}
	acct, err := s.cfg.Repo.Confirm(ctx, hash, pwHash, now)
	if err != nil {
		return Account{}, fmt.Errorf("confirm: %w", err)
	}
	s.cfg.Observer.Confirmed()
	return acct, nil
}

// newPasswordHash checks a new password for the account with address email
// and hashes it.
func (s *Service) newPasswordHash(ctx context.Context, password, email string) (string, error) {
	if err := inputError(ValidatePassword(password, email)); err != nil {
		return "", err
	}
	hash, err := s.cfg.Hasher.Hash(ctx, password)
	if err != nil {
		return "", fmt.Errorf("hash new password: %w", err)
	}
	return hash, nil
}

// Reset spends a reset token and sets password: the account is confirmed if
// it was not (the link proved the mailbox), every session and every other
// reset link ends, and the owner is told by email.
//
// The browser that reset the password is signed in: the new session's
// token is returned.
func (s *Service) Reset(ctx context.Context, token, password, userAgent string) (string, Account, error) {
	hash, ok := HashToken(token)
	if !ok {
		return "", Account{}, ErrTokenInvalid
	}
	now := s.cfg.Now()
	st, err := s.cfg.Repo.CheckToken(ctx, PurposeReset, hash, now)
	if err != nil {
		return "", Account{}, fmt.Errorf("reset password: %w", err)
	}
	pwHash, err := s.newPasswordHash(ctx, password, st.Email)
	if err != nil {
		return "", Account{}, err
	}
	acct, id, err := s.cfg.Repo.Reset(ctx, hash, pwHash, now)
	if err != nil {
		return "", Account{}, fmt.Errorf("reset password: %w", err)
	}
	s.queued(id)
	session, err := s.openSession(ctx, acct.ID, now, userAgent)
	if err != nil {
		return "", Account{}, fmt.Errorf("reset password: sign in: %w", err)
	}
	return session, acct, nil
}

// SignIn checks an address and password and opens a session. It answers
// ErrInvalidCredentials alike for an unknown address and a wrong password,
// after the same hashing work, and ErrNotConfirmed only to someone who
// knows the password.
func (s *Service) SignIn(ctx context.Context, email, password, userAgent string) (token string, acct Account, err error) {
	addr, err := s.normalizeEmail(email)
	if err := inputError(err); err != nil {
		return "", Account{}, err
	}
	if password == "" {
		return "", Account{}, &InputError{Fields: map[string]string{"password": "Enter your password."}}
	}
	acct, err = s.cfg.Repo.AccountByEmail(ctx, addr)
	if errors.Is(err, ErrNotFound) {
		if err := s.cfg.Hasher.VerifyDummy(ctx, password); err != nil {
			return "", Account{}, fmt.Errorf("sign in: %w", err)
		}
		return "", Account{}, ErrInvalidCredentials
	}
	if err != nil {
		return "", Account{}, fmt.Errorf("sign in: %w", err)
	}
	ok, rehash, err := s.cfg.Hasher.Verify(ctx, password, acct.PasswordHash)
	if err != nil {
		return "", Account{}, fmt.Errorf("sign in: %w", err)
	}
	if !ok {
		return "", Account{}, ErrInvalidCredentials
	}
	if !acct.Confirmed() {
		return "", acct, ErrNotConfirmed
	}
	var newHash string
	if rehash {
		if newHash, err = s.cfg.Hasher.Hash(ctx, password); err != nil {
			return "", Account{}, fmt.Errorf("sign in: rehash: %w", err)
		}
	}
	now := s.cfg.Now()
	if err := s.cfg.Repo.SignedIn(ctx, acct.ID, now, s.cfg.LastSeenEvery, newHash); err != nil {
		return "", Account{}, fmt.Errorf("sign in: %w", err)
	}
	plain, err := s.openSession(ctx, acct.ID, now, userAgent)
	if err != nil {
		return "", Account{}, fmt.Errorf("sign in: %w", err)
	}
	s.cfg.Observer.SignedIn()
	return plain, acct, nil
}

// maxUserAgent is the most of a User-Agent header kept with a session.
const maxUserAgent = 512

// openSession stores a new session for accountID and returns its token.
func (s *Service) openSession(ctx context.Context, accountID int64, now time.Time, userAgent string) (string, error) {
	plain, hash, err := NewToken()
	if err != nil {
		return "", err
	}
	sess := Session{
		Hash:              hash,
		AccountID:         accountID,
		CreatedAt:         now,
		ExpiresAt:         now.Add(s.cfg.SessionIdle),
		AbsoluteExpiresAt: now.Add(s.cfg.SessionMaxAge),
		UserAgent:         clip(userAgent, maxUserAgent),
	}
	if err := s.cfg.Repo.CreateSession(ctx, sess); err != nil {
		return "", err
	}
	return plain, nil
}

// clip cuts s to at most n bytes of valid UTF-8.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Authenticate returns the account of a live session token.
func (s *Service) Authenticate(ctx context.Context, token string) (Account, error) {
	hash, ok := HashToken(token)
	if !ok {
		return Account{}, ErrNoSession
	}
	acct, err := s.cfg.Repo.SessionAccount(ctx, hash, s.cfg.Now(), s.cfg.SessionIdle)
	if errors.Is(err, ErrNotFound) {
		return Account{}, ErrNoSession
	}
	if err != nil {
		return Account{}, fmt.Errorf("authenticate: %w", err)
	}
	return acct, nil
}

// SignOut ends a session; an unknown token is not an error.
func (s *Service) SignOut(ctx context.Context, token string) error {
	hash, ok := HashToken(token)
	if !ok {
		return nil
	}
	if err := s.cfg.Repo.DeleteSession(ctx, hash); err != nil {
		return fmt.Errorf("sign out: %w", err)
	}
	return nil
}
