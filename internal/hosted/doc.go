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
// Health: a running service reports Healthy, Degraded or Unhealthy, with a
// reason, through the [Reporter] its Start context carries ([ReporterFrom]),
// and may promise a heartbeat ([Options.Heartbeat]). Checks that are not
// services (a database ping) are added with [Host.AddCheck]. Services and
// checks carry tags; [Host.HealthHandler] serves a probe over a tag, such
// as /readyz over [TagReady], with a JSON body listing each check.
//
// Stopping: when asked to stop, the host first turns its readiness off and
// keeps serving for [Config.StopDelay], for rolling deploys. Then each
// service's Stop gets a soft deadline to finish the work in hand, after
// which its context is cancelled (the hard stop, reported in
// [State.HardStop]), and a hard limit that keeps the whole stop within the
// budget. A background function's work in hand runs under [InFlight].
//
// Lifecycle events can be awaited ([Host.Started], [Host.Stopping],
// [Host.Stopped]) and each service's [State] read at any time, for status
// pages and metrics.
//
// [Queue] is a bounded in-memory FIFO for handing work from one service to
// another, with back-pressure and a Close that lets consumers drain it.
package hosted
