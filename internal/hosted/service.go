package hosted

import "context"

// Service is a unit with a lifecycle.
//
// Start returns once the service runs, or an error if it could not start. Its
// context bounds the starting only: work that outlives Start must not use it.
// A Start that fails should release what it acquired, because the host does
// not call Stop for a service that did not start.
//
// Stop stops the service within the deadline of its context. Stop must be safe
// when Start never ran or failed, and when called twice.
type Service interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

// Failer is implemented by a Service that can fail after it started, such as
// an HTTP server whose Serve returned an unexpected error.
//
// The host calls Failed after every successful Start and watches the channel
// until it stops the service. An error received on it is a failure, handled by
// the service's [Policy]. A closed channel means the service finished on its
// own, which is not a failure. Failed may return a new channel for each start.
type Failer interface {
	Failed() <-chan error
}

// Funcs adapts a start and a stop function into a Service. A nil function
// does nothing. As with any Service, stop must be safe to call twice and
// without a prior start.
func Funcs(start, stop func(ctx context.Context) error) Service {
	return funcs{start: start, stop: stop}
}

type funcs struct {
	start, stop func(ctx context.Context) error
}

func (f funcs) Start(ctx context.Context) error {
	if f.start == nil {
		return nil
	}
	return f.start(ctx)
}

func (f funcs) Stop(ctx context.Context) error {
	if f.stop == nil {
		return nil
	}
	return f.stop(ctx)
}
