package hosted

import (
	"context"
	"fmt"
	"runtime/debug"
)

// PanicError is the failure reported when a service's Start, Stop or
// background function panics. The host logs the stack.
type PanicError struct {
	Value any    // what was passed to panic
	Stack []byte // the panicking goroutine's stack, from runtime/debug.Stack
}

// Error returns "panic: " and the panic value.
func (e *PanicError) Error() string {
	return fmt.Sprintf("panic: %v", e.Value)
}

// Unwrap returns the panic value if it is an error, so that errors.Is and
// errors.As see through the panic.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// protect calls fn, turning a panic into a *PanicError.
func protect(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return fn()
}

// invoke calls fn(ctx) in its own goroutine and waits for it until wait is
// done, so that a Start or Stop ignoring its context cannot hold the host.
// It reports whether fn returned; if not, fn is abandoned and keeps running.
func invoke(ctx, wait context.Context, fn func(context.Context) error) (bool, error) {
	res := make(chan error, 1) // buffered: an abandoned fn can still deliver and exit
	go func() { res <- protect(func() error { return fn(ctx) }) }()
	select {
	case err := <-res:
		return true, err
	case <-wait.Done():
		// Prefer a result that arrived at the same moment.
		select {
		case err := <-res:
			return true, err
		default:
			return false, wait.Err()
		}
	}
}
