package purge_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	domain "signup/internal/account"
	"signup/internal/purge"
)

// TestConfirmationsAndPurgeDoNotDeadlock runs confirmations and purge
// batches against the same accounts for a while. A confirmation that locked
// the token before the account met a batch that locked the account, then
// cascaded to its tokens: PostgreSQL reported "deadlock detected". Both take
// the account first now, so every round ends without an error.
func TestConfirmationsAndPurgeDoNotDeadlock(t *testing.T) {
	// Batches of one account, so the purge takes account locks one after
	// another while the confirmations take theirs.
	p, b := setup(t, purge.Config{BatchSize: 1})
	accounts := b.db.Accounts()
	old := t0.Add(-unconfirmedRetention - day)
	const perRound = 40
	deadline := time.Now().Add(4 * time.Second)
	rounds := 0
	for rounds < 3 || time.Now().Before(deadline) {
		rounds++
		tokens := make([][]byte, perRound)
		for i := range tokens {
			id := b.addAccount(t, account{created: old})
			tokens[i] = b.addToken(t, id, t0.Add(day), time.Time{})
		}
		var wg sync.WaitGroup
		errs := make(chan error, perRound+1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := p.RunOnce(t.Context(), purge.Options{Force: true}); err != nil {
				errs <- err
			}
		}()
		for _, h := range tokens {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := accounts.Confirm(t.Context(), h, "not-a-real-hash", t0)
				switch {
				case err == nil, errors.Is(err, domain.ErrTokenInvalid), errors.Is(err, domain.ErrTokenUsed),
					errors.Is(err, domain.ErrAlreadyConfirmed):
				default:
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: %v", rounds, err)
		}
	}
	t.Logf("%d rounds without a deadlock", rounds)
}
