// Package ops is the operations side of the application, served on the ops
// listener (OPS_ADDR): Prometheus metrics at /metrics, a status dashboard
// at /, and net/http/pprof at /debug/pprof/.
//
// Metrics implements the small observer interfaces that the packages
// emitting events define (account, mail, purge, http), so those packages
// never import Prometheus; what is cheaper to read than to track (queue
// length, outbox by status, service states) is read at scrape time.
// Everything registers on a registry the caller passes in, never on the
// global default one.
package ops
