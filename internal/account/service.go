package account

import (
	"context"
	"errors"
	"fmt"
	"time"
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

// Signup creates an account and queues its confirmation. An address that
// already has an account gets the same answer after the same work (a
// password hash and one transaction); its owner is told by email instead.
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
	res, err := s.cfg.Repo.Signup(ctx, addr, hash, s.cfg.Now())
	if err != nil {
		return SignupResult{}, fmt.Errorf("signup: %w", err)
	}
	s.cfg.Notifier.Queued(res.OutboxID)
	s.cfg.Observer.SignedUp(res)
	return res, nil
}

// Resend queues a fresh confirmation when the address has an unconfirmed
// account, and does nothing otherwise; callers answer the same either way.
func (s *Service) Resend(ctx context.Context, email string) error {
	addr, err := s.normalizeEmail(email)
	if err := inputError(err); err != nil {
		return err
	}
	id, ok, err := s.cfg.Repo.QueueConfirmation(ctx, addr, s.cfg.Now())
	if err != nil {
		return fmt.Errorf("resend confirmation: %w", err)
	}
	if ok {
		s.cfg.Notifier.Queued(id)
	}
	return nil
}

// Confirm spends a confirmation token and confirms its account.
func (s *Service) Confirm(ctx context.Context, token string) (accountID int64, err error) {
	hash, ok := HashToken(token)
	if !ok {
		return 0, ErrTokenInvalid
	}
	id, err := s.cfg.Repo.UseToken(ctx, hash, s.cfg.Now())
	if err != nil {
		return 0, fmt.Errorf("confirm: %w", err)
	}
	s.cfg.Observer.Confirmed()
	return id, nil
}

// SignIn checks an address and password and opens a session. It answers
// ErrInvalidCredentials alike for an unknown address and a wrong password,
// after the same hashing work, and ErrNotConfirmed only to someone who
// knows the password.
func (s *Service) SignIn(ctx context.Context, email, password string) (token string, acct Account, err error) {
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
	plain, hash, err := NewToken()
	if err != nil {
		return "", Account{}, fmt.Errorf("sign in: %w", err)
	}
	sess := Session{
		Hash:              hash,
		AccountID:         acct.ID,
		CreatedAt:         now,
		ExpiresAt:         now.Add(s.cfg.SessionIdle),
		AbsoluteExpiresAt: now.Add(s.cfg.SessionMaxAge),
	}
	if err := s.cfg.Repo.CreateSession(ctx, sess); err != nil {
		return "", Account{}, fmt.Errorf("sign in: %w", err)
	}
	s.cfg.Observer.SignedIn()
	return plain, acct, nil
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
