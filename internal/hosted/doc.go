// Package hosted runs the long-lived parts of a program (servers, workers,
// schedulers) as services with a managed lifecycle: the Go counterpart of
// ASP.NET Core's Generic Host, IHostedService and BackgroundService.
//
// A [Host] starts its services one after another in the order they were
// added, each under a start timeout, and stops them in reverse order under one
// shutdown budget. If a service fails to start, the services already started
// are stopped again and [Host.Run] returns the error.
//
// While running, a service can fail: a [Background] function returns an error
// or panics, or a service implementing [Failer] reports one. The service's
// [Policy] decides what follows: stop the host, restart the service with
// capped exponential backoff, or record the failure and carry on. Panics in
// Start, Stop and background functions are recovered and reported as
// [*PanicError], with the stack logged.
//
// Lifecycle events can be awaited ([Host.Started], [Host.Stopping],
// [Host.Stopped]) and each service's [State] read at any time, for readiness
// probes and status pages.
//
// [Queue] is a bounded in-memory FIFO for handing work from one service to
// another, with back-pressure and a Close that lets consumers drain it.
package hosted
