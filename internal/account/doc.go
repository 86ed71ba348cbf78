// Package account is the domain of signing up, confirming an address and
// signing in: its rules, password hashing and tokens.
//
// It knows nothing of HTTP or SQL. It states what it needs from storage as
// the Repository and TokenStore interfaces (the store provides them), and
// tells of queued emails through the Notifier interface (cmd/web offers the
// ids to the mail sender's queue). The Composer writes the email of an
// outbox row: it mints its token and renders its templates; the mail
// sender only delivers.
package account
