package faults_test

import (
	"syscall"
	"testing"

	"signup/internal/e2e"
)

// fastBinary is the product built without the race detector: these tests
// load it and time it, and a race build would be several times slower.
var fastBinary string

func TestMain(m *testing.M) { e2e.Main(m, nil, &fastBinary) }

// interrupt is the signal a graceful stop starts with.
var interrupt = syscall.SIGTERM
