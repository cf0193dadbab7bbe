package testutil

import (
	"testing"
	"time"
)

// WaitFor polls cond every 10 ms for up to 5 s and fails the test, naming
// what, if it never holds.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
