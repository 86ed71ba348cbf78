// Package account is the domain of signing up, confirming an address and
// signing in: its rules, password hashing and tokens.
//
// It knows nothing of HTTP or SQL. It states what it needs from storage as
// the Repository interface, and what it needs from the mail side as the
// Notifier interface; the store and the mail sender provide them.
package account
