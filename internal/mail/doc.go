// Package mail sends the product's emails: it is the sender hosted service
// that takes rows from the outbox, has the account domain write them, and
// delivers them to an SMTP server, judging every failure by the stage of
// the conversation it came from.
//
// A newcomer reads it file by file: sender.go (Start, Stop, the workers'
// lifecycle), worker.go (take a batch, send, settle), session.go (one SMTP
// conversation and its TLS level), policy.go (the verdict on a failure:
// pure functions), blocked.go (the blocked state and its probe), sweep.go
// (due rows, expired leases, dead instances), recorder.go (group-committed
// sent marks), liveness.go (the instance lock).
//
// # Fast in memory, durable in PostgreSQL
//
// The signup transaction writes an outbox row; after commit the handler
// offers its id to the in-memory queue. Workers take ids from the queue
// and claim the row (a conditional UPDATE that leases it to this instance
// and counts the attempt). A sweep, at start, every SweepEvery and when a
// retry this instance scheduled falls due, leases due rows the queue does
// not carry (a missed notification, a retry whose time has come, the rows
// of a process that died: see Crashes) with FOR UPDATE SKIP LOCKED and
// queues them; its lease is the claim (it counts the attempt), so a swept
// row is written once to take it and once to settle it. That is also how
// several instances share one outbox without sending a row twice.
//
// A worker takes what is queued in batches (Config.Batch, and never more
// than its share of the queue): one statement claims the batch, and the
// account domain (Config.Composer) writes the emails, minting their tokens
// and storing the hashes in one transaction. A row with no account, of a
// kind that needs one (a visitor asked for mail to an address without an
// account, or beyond its limits), is deleted unsent by the statement that
// would take it, the sweep's or the worker's. The worker builds each
// multipart/alternative message with go-mail and sends it over its own SMTP
// session, kept open across messages (RSET after a transaction that did
// not end, QUIT at the end). When the server offers PIPELINING (RFC 2920),
// MAIL FROM, RCPT TO and DATA go in one write and the message with its
// final dot in another: two round trips a message instead of five. The
// recorder marks the rows the server accepted as sent for all workers at
// once, when a worker needs its mark (or every worker has one waiting);
// failures are recorded one by one. A batch that runs long (slow server)
// records what it sent and renews the rest's leases every half
// SendTimeout, so its rows are never taken as abandoned.
//
// # Outcomes
//
// Each failure is judged by the stage of the conversation it came from
// (policy.go). No reply at all, 421, anything up to and including MAIL
// FROM, a 5xx to RCPT that blames the HELO, sender, client or relaying, or
// the same 5xx to three recipients in a row: the server or our setup is at
// fault. The sender is blocked (Sender.Blocked, Observer.Blocked, one ERROR
// line per change): the rows go back to pending with no attempt spent,
// nothing is attempted, a probe runs every 4 s at most, and the sweep
// drains the backlog at once when it gets through. A 4xx to RCPT or DATA
// is the message's own: it is retried after RetryMin·2^(attempt-1), capped
// at RetryMax, jittered. Another 5xx to DATA fails the row; to RCPT it also
// puts the address on the suppression list, and later rows to it are
// marked suppressed without being sent. A row older than MaxAge is failed
// with its last error.
//
// Delivery is at least once: a message is sent twice only when an attempt
// was cut short after the server accepted it, or accepted messages were
// not yet recorded as sent (a crash: at most one per worker; or Stop
// interrupting a send), when a stalled worker outlived its lease, or while
// the instance lock was lost (below).
//
// # Crashes
//
// A lease alone would keep a killed process's rows, in flight or merely
// swept into its queue, from everyone until the lease (Config.Lease, a
// minute) ran out. So each sender also proves it is alive: from Start to
// Stop it holds a session-level advisory lock,
// pg_advisory_lock_shared(0x6d61696c, hashtext(instance)), on a connection
// of its own outside the pool. When the process dies, PostgreSQL ends the
// session and the lock is gone at once. A lease counts as dead when its
// lease_until has passed or when no session holds its owner's lock
// (pg_locks, in this database: read by the periodic sweeps and by a claim
// that meets another instance's lease, not by every statement); the
// sweep's lease and the claim by id both take dead leases, so another instance, or the restarted process, sends a
// killed process's rows at its next sweep. The expiry stays as the
// backstop for a process that is alive but stuck, and for one whose host
// vanished before the server noticed its connection was gone.
//
// Start fails when it cannot take the lock (the database is down). It then
// gives back rows still leased under its own instance id, which only a dead
// earlier process with the same id (a pid reused by a restarted container)
// can have left, unless another live session shares the lock. The lock is
// shared, so two ids whose hashes collide never block each other; a
// collision only means a crash of one is recovered when its leases expire.
//
// When the lock's connection breaks (a database restart, a terminated
// session), the sender takes it again on a new connection with capped
// backoff, and sweeps nothing meanwhile. Until it is back, other instances
// may take the rows this one holds: a message in flight may then be sent
// twice. Recording an outcome stays conditional on leased_by being this
// instance, so whichever instance loses that race only logs it.
//
// # Stopping
//
// Stop ends the sweep, lets the workers send what is already queued within
// the shutdown budget, interrupts what is still in progress shortly before
// the budget runs out, and gives back every row this instance holds: they
// are pending again, for the next start or another instance. It gives up
// the instance lock last.
package mail
