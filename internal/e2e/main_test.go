package e2e_test

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"signup/internal/e2e"
)

// webBinary is the product built with the race detector; fastBinary is
// built without it, for load and timing tests.
var webBinary, fastBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	webBinary, err = e2e.Build(filepath.Join(dir, "race"), true)
	if err == nil {
		fastBinary, err = e2e.Build(filepath.Join(dir, "fast"), false)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// interrupt is the signal a graceful stop starts with.
var interrupt = syscall.SIGTERM
