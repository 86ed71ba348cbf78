package hosted

import (
	"fmt"
	"time"
)

// Status is where a service is in its lifecycle.
type Status int

// The statuses a service goes through. A service that fails to start, or
// fails while running, is StatusFailed; under the Restart policy it moves on
// to StatusRestarting and back to StatusStarting.
const (
	StatusPending    Status = iota // added, not started yet
	StatusStarting                 // Start is running
	StatusRunning                  // started and not failed
	StatusRestarting               // failed; waiting out the backoff before a restart
	StatusStopping                 // Stop is running
	StatusStopped                  // stopped, or finished on its own
	StatusFailed                   // failed to start, failed while running, or failed to stop
)

var statusNames = [...]string{
	StatusPending:    "pending",
	StatusStarting:   "starting",
	StatusRunning:    "running",
	StatusRestarting: "restarting",
	StatusStopping:   "stopping",
	StatusStopped:    "stopped",
	StatusFailed:     "failed",
}

// String returns the status in lower case, such as "running".
func (s Status) String() string {
	if s >= 0 && int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// MarshalText encodes the status as its String, for JSON status pages.
func (s Status) MarshalText() ([]byte, error) {
	return []byte(s.String()), nil
}

// State is a snapshot of one service, as returned by [Host.States].
type State struct {
	Name      string    // as given to Add
	Policy    Policy    // what a failure does, as given to Add
	Status    Status    // where the service is in its lifecycle
	Since     time.Time // when Status last changed
	StartedAt time.Time // last successful start; zero if never started
	Restarts  int       // restarts attempted under the Restart policy
	LastError error     // the last failure or Start/Stop error; kept after recovery
	// HardStop is true when the last Stop outlived its soft deadline: its
	// context was cancelled to cut short the work in hand.
	HardStop bool

	// Health is what the running service last reported (Healthy after each
	// start), Unhealthy when its heartbeat is overdue, and what its Status
	// implies otherwise: Unhealthy unless running or stopped.
	Health       Health
	HealthReason string    // why, in a few words safe to show
	HealthSince  time.Time // when Health last changed
}
