package tests

import (
	"strings"
	"testing"
)

// dockerRootCaps are a root payload's capability sets in Docker: the
// default set permitted and effective, nothing inheritable or ambient.
// (Stages start with every namespace capability ambient; were those sets
// passed on, root's exec would add them all back, bounding set or not.)
const dockerRootCaps = "CapInh:\t0000000000000000\nCapPrm:\t00000000a80425fb\nCapEff:\t00000000a80425fb\n" +
	"CapBnd:\t00000000a80425fb\nCapAmb:\t0000000000000000"

// dockerUserCaps are a non-root payload's: none but the bounding set.
const dockerUserCaps = "CapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n" +
	"CapBnd:\t00000000a80425fb\nCapAmb:\t0000000000000000"

// TestCapabilitiesEveryTime: every payload and every exec session gets
// Docker's capability set, not just most of them. The cut once applied to
// one OS thread only, and Go starts processes from any thread, so some
// containers kept every capability; one run proves nothing, twenty do.
func TestCapabilitiesEveryTime(t *testing.T) {
	e := runEnv(t)
	for i := range 10 {
		if got := strings.TrimSpace(e.ok(nil, "run", "--rm", "bb", "grep", "^Cap", "/proc/self/status")); got != dockerRootCaps {
			t.Fatalf("run %d:\n%s\nwant\n%s", i, got, dockerRootCaps)
		}
	}
	if got := strings.TrimSpace(e.ok(nil, "run", "--rm", "-u", "1000", "bb", "grep", "^Cap", "/proc/self/status")); got != dockerUserCaps {
		t.Fatalf("run -u 1000:\n%s\nwant\n%s", got, dockerUserCaps)
	}
	e.ok(nil, "run", "-d", "--name", "caps", "bb", "sleep", "1000")
	for i := range 20 {
		if got := strings.TrimSpace(e.ok(nil, "exec", "caps", "grep", "^Cap", "/proc/self/status")); got != dockerRootCaps {
			t.Fatalf("exec %d:\n%s\nwant\n%s", i, got, dockerRootCaps)
		}
	}
	if got := strings.TrimSpace(e.ok(nil, "exec", "-u", "1000", "caps", "grep", "^Cap", "/proc/self/status")); got != dockerUserCaps {
		t.Fatalf("exec -u 1000:\n%s\nwant\n%s", got, dockerUserCaps)
	}
}
