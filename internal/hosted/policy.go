package hosted

import "fmt"

// Policy says what the host does when a running service fails.
type Policy int

const (
	// StopHost stops the host: every service is stopped and Run returns an
	// error naming the failed service. It is the default.
	StopHost Policy = iota
	// Restart stops what is left of the service (Stop, bounded by the start
	// timeout) and starts it again after a capped exponential backoff with
	// jitter. Restarts are counted in [State];
	// past [Options.MaxRestarts] the failure escalates to StopHost.
	Restart
	// Ignore logs the failure, marks the service failed and keeps the host
	// running.
	Ignore
)

// String returns "stop-host", "restart" or "ignore".
func (p Policy) String() string {
	switch p {
	case StopHost:
		return "stop-host"
	case Restart:
		return "restart"
	case Ignore:
		return "ignore"
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}
