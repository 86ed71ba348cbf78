package hosted

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Background adapts a long-running function into a Service, like
// BackgroundService.ExecuteAsync.
//
// Start launches fn in a goroutine and returns at once. fn's context carries
// the values of Start's context but not its deadline; Stop cancels it and
// waits for fn to return, bounded by Stop's context.
//
// fn returning a non-nil error before Stop, or panicking, is a failure: it is
// reported to the host through [Failer], and the host applies the service's
// [Policy]. fn returning nil before Stop means its work is done: the service
// finishes and is not restarted. An error fn returns after Stop cancelled it,
// other than [context.Canceled], is returned by Stop.
//
// The service can be started again once fn has returned.
func Background(fn func(ctx context.Context) error) Service {
	if fn == nil {
		panic("hosted: Background with a nil func")
	}
	return &background{fn: fn}
}

type background struct {
	fn func(ctx context.Context) error

	mu  sync.Mutex
	cur *execution // the current or last run of fn; nil before the first Start
}

// execution is one run of a background func.
type execution struct {
	cancel context.CancelFunc
	failed chan error    // gets fn's failure, or is closed when fn finished on its own
	done   chan struct{} // closed once fn has returned
	err    error         // what Stop reports; written before done is closed
}

func (b *background) Start(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur != nil {
		select {
		case <-b.cur.done:
		default:
			return errors.New("background func already running")
		}
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e := &execution{cancel: cancel, failed: make(chan error, 1), done: make(chan struct{})}
	b.cur = e
	go b.execute(runCtx, e)
	return nil
}

func (b *background) execute(ctx context.Context, e *execution) {
	defer close(e.done)
	defer e.cancel()
	err := protect(func() error { return b.fn(ctx) })
	switch {
	case ctx.Err() != nil: // Stop asked fn to return: what it says belongs to Stop.
		if !errors.Is(err, context.Canceled) {
			e.err = err
		}
	case err != nil:
		e.failed <- err // buffered: never blocks
	default:
		close(e.failed)
	}
}

func (b *background) Stop(ctx context.Context) error {
	b.mu.Lock()
	e := b.cur
	b.mu.Unlock()
	if e == nil {
		return nil
	}
	e.cancel()
	select {
	case <-e.done:
	case <-ctx.Done():
		return fmt.Errorf("wait for background func: %w", ctx.Err())
	}
	// A failure nobody received (it raced with the host stopping) is not lost.
	select {
	case err := <-e.failed:
		if err != nil {
			return err
		}
	default:
	}
	return e.err
}

func (b *background) Failed() <-chan error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cur == nil {
		return nil
	}
	return b.cur.failed
}
