package main

import (
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// takeTerminal moves dev into a process group of its own and makes that
// group the terminal's foreground, so Ctrl-C reaches dev alone: not make,
// which would die of the signal and report an error, and not web, which
// dev signals itself (once). It returns a func that gives the terminal
// back. Without a terminal, or when not in the foreground, it does nothing.
func takeTerminal() (restore func()) {
	nothing := func() {}
	tty := int(os.Stdin.Fd())
	fg, err := unix.IoctlGetInt(tty, unix.TIOCGPGRP)
	if err != nil || fg != syscall.Getpgrp() {
		return nothing
	}
	// A background group that sets the foreground is sent SIGTTOU.
	signal.Ignore(syscall.SIGTTOU)
	if err := syscall.Setpgid(0, 0); err != nil {
		return nothing
	}
	if err := unix.IoctlSetPointerInt(tty, unix.TIOCSPGRP, syscall.Getpid()); err != nil {
		syscall.Setpgid(0, fg)
		return nothing
	}
	return func() { unix.IoctlSetPointerInt(tty, unix.TIOCSPGRP, fg) }
}
