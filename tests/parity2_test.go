package tests

import (
	"slices"
	"strings"
	"testing"
)

// More of Docker's behaviour where a Docker user's hands already go
// (issue 15, continued): one test per item, each failing on the behaviour
// it replaced.

// TestFailedStartStaysCreated: a container whose start fails is left
// Created, with the failure's status and reason, as Docker leaves it, not
// Exited (127); a later start tries again.
func TestFailedStartStaysCreated(t *testing.T) {
	e := runEnv(t)
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"detached", []string{"run", "-d", "--name", "nocmd-d", "bb", "nosuchcmd"}, 127},
		{"foreground", []string{"run", "--name", "nocmd-fg", "bb", "nosuchcmd"}, 127},
		{"bad workdir", []string{"run", "-d", "--name", "nodir", "-w", "/etc/passwd", "bb", "true"}, 0},
	} {
		r := e.nook(nil, tc.args...)
		if r.code == 0 || tc.code != 0 && r.code != tc.code {
			t.Errorf("%s: nook %s:\n%s\nwant a failure (%d)", tc.name, strings.Join(tc.args, " "), r, tc.code)
		}
		name := tc.args[slices.Index(tc.args, "--name")+1]
		if got := e.state(name); got != "created" {
			t.Errorf("%s: state after a failed start = %q, want created", tc.name, got)
		}
		st := e.ok(nil, "ps", "-a", "--filter", "name="+name, "--format", "{{.Status}}")
		if st != "Created\n" {
			t.Errorf("%s: ps status = %q, want Created", tc.name, st)
		}
		if got := e.ok(nil, "inspect", "-f", "{{.State.Status}}|{{.State.Error}}", name); !strings.HasPrefix(got, "created|") || len(got) < len("created|x\n") {
			t.Errorf("%s: inspect State = %q (run: %s)", tc.name, got, r)
		}
	}
}
