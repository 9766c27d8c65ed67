package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// nsProcStates maps each process of the pid namespace of host pid pid1
// to its state letter (/proc/PID/stat's third field).
func nsProcStates(t *testing.T, pid1 int) map[int]string {
	t.Helper()
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid1))
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]string{}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		if l, err := os.Readlink(d + "/ns/pid"); err != nil || l != ns {
			continue
		}
		b, err := os.ReadFile(d + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		pid, _ := strconv.Atoi(filepath.Base(d))
		out[pid] = f[0]
	}
	return out
}

// TestPauseUnpause: pause stops every process of the container (state T,
// a child running as another uid included), ps and inspect show it
// paused, exec is refused; unpause lets them run again; a paused
// container still stops.
func TestPauseUnpause(t *testing.T) {
	e := runEnv(t)
	e.ok(nil, "run", "-d", "--name", "p", "--user", "1000", "bb", "sh", "-c",
		"sleep 1000 & i=0; while true; do i=$((i+1)); echo $i > /tmp/c; sleep 0.05; done")
	pid1, err := strconv.Atoi(strings.TrimSpace(e.ok(nil, "inspect", "-f", "{{.State.Pid}}", "p")))
	if err != nil {
		t.Fatal(err)
	}
	if got := e.ok(nil, "pause", "p"); got != "p\n" {
		t.Errorf("pause printed %q", got)
	}
	states := nsProcStates(t, pid1)
	if len(states) < 2 {
		t.Fatalf("the container's processes: %v, want sh and sleep at least", states)
	}
	for pid, st := range states {
		if st != "T" {
			t.Errorf("after pause, process %d is in state %s, want T (stopped): %v", pid, st, states)
		}
	}
	if got := e.state("p"); got != "paused" {
		t.Errorf("ps State = %q, want paused", got)
	}
	if got := e.ok(nil, "ps", "--format", "{{.Status}}"); !strings.HasSuffix(got, "(Paused)\n") {
		t.Errorf("ps Status = %q, want Up … (Paused)", got)
	}
	if got := e.ok(nil, "ps", "-q", "--filter", "status=paused"); strings.TrimSpace(got) == "" {
		t.Errorf("ps --filter status=paused lists nothing")
	}
	if got := e.ok(nil, "inspect", "-f", "{{.State.Status}} {{.State.Running}} {{.State.Paused}}", "p"); got != "paused true true\n" {
		t.Errorf("inspect State = %q, want paused true true", got)
	}
	if r := e.nook(nil, "exec", "p", "true"); r.code == 0 || !strings.Contains(r.stderr, "paused") {
		t.Errorf("exec into a paused container: %s", r)
	}
	if r := e.nook(nil, "pause", "p"); r.code == 0 || !strings.Contains(r.stderr, "is paused") {
		t.Errorf("pause of a paused container: %s", r)
	}
	if got := e.ok(nil, "unpause", "p"); got != "p\n" {
		t.Errorf("unpause printed %q", got)
	}
	for pid, st := range nsProcStates(t, pid1) {
		if st == "T" {
			t.Errorf("after unpause, process %d is still stopped", pid)
		}
	}
	if got := e.state("p"); got != "running" {
		t.Errorf("ps State after unpause = %q, want running", got)
	}
	first := e.ok(nil, "exec", "p", "cat", "/tmp/c")
	eventually(t, "the counter to move after unpause", func() bool { return e.ok(nil, "exec", "p", "cat", "/tmp/c") != first })
	if r := e.nook(nil, "unpause", "p"); r.code == 0 || !strings.Contains(r.stderr, "not paused") {
		t.Errorf("unpause of a running container: %s", r)
	}
	e.ok(nil, "pause", "p")
	e.ok(nil, "stop", "-t", "1", "p")
	if got := e.state("p"); got != "exited" {
		t.Errorf("a paused container stopped is %q, want exited", got)
	}
}
