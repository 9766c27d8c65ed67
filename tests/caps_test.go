package tests

import (
	"strings"
	"testing"
)

// dockerCapBnd is Docker's default capability set, as /proc shows it.
const dockerCapBnd = "CapBnd:\t00000000a80425fb"

// TestCapabilitiesEveryTime: every payload and every exec session gets
// Docker's capability set, not just most of them. The cut once applied to
// one OS thread only, and Go starts processes from any thread, so some
// containers kept every capability; one run proves nothing, twenty do.
func TestCapabilitiesEveryTime(t *testing.T) {
	e := runEnv(t)
	for i := range 10 {
		if got := strings.TrimSpace(e.ok(nil, "run", "--rm", "bb", "grep", "CapBnd", "/proc/self/status")); got != dockerCapBnd {
			t.Fatalf("run %d: %q, want %q", i, got, dockerCapBnd)
		}
	}
	e.ok(nil, "run", "-d", "--name", "caps", "bb", "sleep", "1000")
	for i := range 20 {
		if got := strings.TrimSpace(e.ok(nil, "exec", "caps", "grep", "CapBnd", "/proc/self/status")); got != dockerCapBnd {
			t.Fatalf("exec %d: %q, want %q", i, got, dockerCapBnd)
		}
	}
}
