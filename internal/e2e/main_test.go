package e2e_test

import (
	"syscall"
	"testing"

	"signup/internal/e2e"
)

// webBinary is the product built with the race detector; fastBinary is
// built without it, for load and timing tests.
var webBinary, fastBinary string

func TestMain(m *testing.M) { e2e.Main(m, &webBinary, &fastBinary) }

// interrupt is the signal a graceful stop starts with.
var interrupt = syscall.SIGTERM
