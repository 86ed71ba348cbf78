package netfault

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that a closed Proxy leaves no goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
