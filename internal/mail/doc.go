// Package mail sends the product's emails: it is the sender hosted service
// that claims rows from the outbox, renders them and hands them to an SMTP
// server with go-mail, retrying what fails for a while.
//
// # Fast in memory, durable in PostgreSQL
//
// The signup transaction writes an outbox row; after commit the handler
// offers its id to the in-memory queue. Workers take ids from the queue
// and claim the row (a conditional UPDATE that leases it to this instance
// and counts the attempt). A sweep, at start and every SweepEvery, leases
// due rows the queue does not carry (a missed notification, a retry whose
// time has come, the lease of a process that died) with FOR UPDATE SKIP
// LOCKED and queues them: that is also how several instances share one
// outbox without sending a row twice.
//
// For each claimed row the worker mints the confirmation token (only its
// SHA-256 is stored, the link goes in the email), renders the text and
// HTML templates from web.Emails, builds a multipart/alternative message
// with go-mail and sends it over the worker's own SMTP connection, which
// stays open across messages and is dialled again after any error.
//
// # Outcomes
//
// Accepted: the row is sent. A 5xx reply to the message fails the row at
// once (last_error keeps the reply). Anything else is temporary (4xx,
// network errors, timeouts, a server refusing connections, and any failure
// to open a session, such as a missing STARTTLS with starttls=required or
// rejected credentials: those are configuration problems, logged at error
// level, and retrying lets the queue recover once they are fixed). A
// temporary failure is retried after RetryMin·2^(attempt-1), capped at
// RetryMax, jittered; after MaxAttempts the row is failed.
//
// Delivery is at least once: a message is sent twice only when an attempt
// was cut short after the server accepted it (a crash, or Stop interrupting
// a send) or when a stalled worker outlived its lease.
//
// # Stopping
//
// Stop ends the sweep, lets the workers send what is already queued within
// the shutdown budget, interrupts what is still in progress shortly before
// the budget runs out, and gives back every row this instance holds: they
// are pending again, for the next start or another instance.
package mail
