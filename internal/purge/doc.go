// Package purge is the purger hosted service: it deletes what the product
// promised not to keep, on a schedule, once across all instances.
//
// # Policy
//
// All cut-offs come from the purger's clock at the start of a run and are
// passed to SQL as parameters (never now()):
//
//   - Unconfirmed accounts are deleted UnconfirmedRetention after the later
//     of their creation and the last confirmation mail sent to them (a link
//     re-sent yesterday keeps its account), unless one of their emails is
//     pending or being sent (a confirmation on its way, or retrying). A mail
//     that failed for good does not protect the account.
//   - Confirmed accounts not seen for InactiveRetention-InactiveWarning, and
//     not yet warned, are warned: warned_at is set and an inactive_warning
//     email is queued, in one transaction per batch. A sign-in clears
//     warned_at and drops the warning if it was not sent yet.
//   - Warned accounts are deleted InactiveWarning after warned_at, if they
//     were not seen since and no email of theirs is pending or being sent
//     (the warning went out first). A warning that failed for good (the
//     address bounces) does not hold the deletion back.
//   - Sessions whose expiry has passed are deleted. The store relies on
//     expires_at never being after absolute_expires_at (the account service
//     keeps that), so expires_at alone finds them, by its index.
//   - Tokens expired, or used, TokenGrace (a day) ago are deleted: until then
//     an old link still shows "expired" or "already used" instead of
//     "invalid".
//   - Outbox rows sent more than OutboxRetention (30 days) ago, and rows that
//     failed for good created that long ago, are deleted; until then they
//     serve the status page and a support question.
//
// Tokens, sessions and outbox rows of deleted accounts go with them by ON
// DELETE CASCADE.
//
// # Safety limit
//
// Before deleting anything, a run counts the accounts it would delete or
// warn (a warning is a deletion announced). If they are more than MaxShare
// of all accounts and more than SafetyFloor (100), the run deletes and warns
// nothing and fails with a *LimitError, unless forced. A run of SafetyFloor
// accounts or fewer is never stopped by the share, so a small site can purge
// most of its accounts. A forced run has no ceiling unless Options.Max caps
// the accounts it deletes and warns.
//
// # Dry runs
//
// A dry run counts each category with a SELECT that uses the predicates of
// the batches and takes no row lock; the rows of accounts it would delete
// are not counted again in the later categories, as a real run deletes them
// by cascade.
//
// # Batches
//
// Each category is treated in batches of BatchSize rows, each its own short
// transaction under a statement timeout, walking the category's index by
// keyset (never rescanning what was already treated) and skipping rows
// locked by a concurrent request. A run stops between batches when its
// context ends: every batch is a transaction, so what is done is consistent,
// the run is recorded as interrupted, and the next run does the rest.
//
// # Runs
//
// A run holds a PostgreSQL advisory lock on a dedicated connection, so runs
// never overlap across instances. A scheduled run also checks, under the
// lock, that its tick was not served already, so instances whose clocks
// differ a little run each tick once. Every run (scheduled, manual, dry) is
// recorded in purge_runs with its counts and error. At start, the latest tick
// is caught up if no run served it. A failed run is logged and recorded and
// the next tick tries again; only a panic fails the service.
package purge
