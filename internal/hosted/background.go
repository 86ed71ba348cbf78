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
// the values of Start's context (its [Reporter] too) but not its deadline.
// Stop cancels it, like the stoppingToken of ExecuteAsync: fn should take no
// new work and return. Work already in hand can go on under [InFlight]'s
// context until Stop's own context ends (the host's soft deadline); then
// that is cancelled too, and Stop waits for fn until the host's hard limit
// (or returns at once, outside a host).
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
	cancel     context.CancelFunc // ends fn's context: the soft stop
	cancelHard context.CancelFunc // ends InFlight contexts: the hard stop
	failed     chan error         // gets fn's failure, or is closed when fn finished on its own
	done       chan struct{}      // closed once fn has returned
	err        error              // what Stop reports; written before done is closed
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
	hardCtx, cancelHard := context.WithCancel(context.WithoutCancel(ctx))
	runCtx, cancel := context.WithCancel(context.WithValue(hardCtx, inFlightKey{}, hardCtx))
	e := &execution{cancel: cancel, cancelHard: cancelHard, failed: make(chan error, 1), done: make(chan struct{})}
	b.cur = e
	go b.execute(runCtx, e)
	return nil
}

type inFlightKey struct{}

// closed is a closed channel.
var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// InFlight returns the context for finishing work already in hand when
// ctx, a [Background] function's context, ends: it carries ctx's values and
// ends only at the hard stop, when the host's soft deadline for the
// service has passed. For any other context it returns ctx itself.
func InFlight(ctx context.Context) context.Context {
	if c, ok := ctx.Value(inFlightKey{}).(context.Context); ok {
		return c
	}
	return ctx
}

func (b *background) execute(ctx context.Context, e *execution) {
	defer close(e.done)
	defer e.cancelHard()
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
		e.cancelHard()
		hard, ok := ctx.Value(hardStopKey{}).(<-chan struct{})
		if !ok {
			hard = closed // outside a host: no time past ctx
		}
		select {
		case <-e.done:
		case <-hard:
			select {
			case <-e.done: // it returned at the same moment
			default:
				return fmt.Errorf("wait for background func: %w", ctx.Err())
			}
		}
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
