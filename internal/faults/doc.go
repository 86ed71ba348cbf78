// Package faults is the fault suite: the real web binary, run as a process,
// against a real PostgreSQL and the devmail SMTP peer, under the faults a
// production instance meets — being killed at random moments, an SMTP
// outage, a database restart, a slow database, malformed requests at
// volume, and a shutdown with a backlog of mail.
//
// Each test logs what it measured: what was lost (asserted to be nothing),
// how many duplicates arrived, and the timings that matter. The package has
// no code of its own; everything is in its tests.
package faults
