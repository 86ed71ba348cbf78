package e2e_test

import (
	"fmt"
	"os"
	"testing"

	"signup/internal/e2e"
)

// webBinary is the product, built once with the race detector.
var webBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	webBinary, err = e2e.Build(dir, true)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
