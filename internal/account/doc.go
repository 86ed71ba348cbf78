// Package account is the domain of an account's life: signing up,
// confirming an address, signing in, resetting a password, changing the
// password or the address, sessions and deletion; its rules, password
// hashing, tokens, the emails it sends (mailkinds.go: one entry per kind;
// mail.go: the Composer that writes them) and
// the limits on mail a visitor can trigger.
//
// It knows nothing of HTTP or SQL. It states what it needs from storage as
// the Repository and TokenStore interfaces (the store provides them), and
// tells of queued emails through the Notifier interface (cmd/web offers the
// ids to the mail sender's queue). The Composer writes the email of an
// outbox row: it mints its token and renders its templates; the mail
// sender only delivers.
package account
