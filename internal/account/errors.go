package account

import "errors"

var (
	// ErrInvalidCredentials is the one answer to a failed sign-in, whether
	// the address is unknown or the password is wrong.
	ErrInvalidCredentials = errors.New("account: invalid email or password")
	// ErrNotConfirmed means the password was right but the address is not
	// confirmed yet.
	ErrNotConfirmed = errors.New("account: email not confirmed")
	// ErrTokenInvalid means a link's token is malformed or unknown.
	ErrTokenInvalid = errors.New("account: invalid token")
	// ErrTokenExpired means a link's token is past its expiry.
	ErrTokenExpired = errors.New("account: token expired")
	// ErrTokenUsed means a link's token was already used.
	ErrTokenUsed = errors.New("account: token already used")
	// ErrTokenSuperseded means a newer link of the same purpose was sent
	// since this one.
	ErrTokenSuperseded = errors.New("account: token superseded")
	// ErrAlreadyConfirmed means a confirmation link's account is confirmed
	// already, by this link or another: every confirmation link is dead.
	ErrAlreadyConfirmed = errors.New("account: already confirmed")
	// ErrNoSession means the session token is unknown or expired.
	ErrNoSession = errors.New("account: no session")
	// ErrEmailTaken means the address has an account already: returned when
	// an email change is confirmed for an address taken in the meantime.
	ErrEmailTaken = errors.New("account: email taken")
	// ErrNotFound is returned by a Repository when the account asked for does
	// not exist.
	ErrNotFound = errors.New("account: not found")
)
