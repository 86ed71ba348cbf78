package account

import "errors"

var (
	// ErrInvalidCredentials is the one answer to a failed sign-in, whether
	// the address is unknown or the password is wrong.
	ErrInvalidCredentials = errors.New("account: invalid email or password")
	// ErrNotConfirmed means the password was right but the address is not
	// confirmed yet.
	ErrNotConfirmed = errors.New("account: email not confirmed")
	// ErrTokenInvalid means a confirmation token is malformed or unknown.
	ErrTokenInvalid = errors.New("account: invalid token")
	// ErrTokenExpired means a confirmation token is past its expiry.
	ErrTokenExpired = errors.New("account: token expired")
	// ErrTokenUsed means a confirmation token was already used.
	ErrTokenUsed = errors.New("account: token already used")
	// ErrTokenSuperseded means a newer link of the same purpose was sent
	// since this one.
	ErrTokenSuperseded = errors.New("account: token superseded")
	// ErrAlreadyConfirmed means a confirmation link's account is confirmed
	// already, by this link or another: every confirmation link is dead.
	ErrAlreadyConfirmed = errors.New("account: already confirmed")
	// ErrWrongPassword means the current password given to confirm a
	// setting change is wrong.
	ErrWrongPassword = errors.New("account: wrong current password")
	// ErrNoSession means the session token is unknown or expired.
	ErrNoSession = errors.New("account: no session")
	// ErrEmailTaken is returned by Repository.CreateAccount when the address
	// already has an account.
	ErrEmailTaken = errors.New("account: email taken")
	// ErrNotFound is returned by a Repository when the account asked for does
	// not exist.
	ErrNotFound = errors.New("account: not found")
)
