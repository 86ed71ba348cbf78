// Package account is the domain of an account's life: signing up,
// confirming an address, signing in, resetting a password, changing the
// password or the address, sessions and deletion; its rules, password
// hashing, tokens, the emails it sends (mailkinds.go: one row per kind) and
// the limits on mail a visitor can trigger.
//
// It knows nothing of HTTP or SQL. It states what it needs from storage as
// the Repository interface, and what it needs from the mail side as the
// Notifier interface; the store and the mail sender provide them.
package account
