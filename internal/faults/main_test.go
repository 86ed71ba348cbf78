package faults_test

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"signup/internal/e2e"
)

// fastBinary is the product built without the race detector: these tests
// load it and time it, and a race build would be several times slower.
var fastBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fastBinary, err = e2e.Build(filepath.Join(dir, "fast"), false)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// interrupt is the signal a graceful stop starts with.
var interrupt = syscall.SIGTERM
