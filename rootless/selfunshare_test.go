package rootless_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"nook/internal/testutil"
	"nook/rootless"
)

// stagesProgram builds testdata/entry, a program linked with the entry
// point that unshares its namespaces (rootless.EntrySymbol), as
// container/stagebin builds nook-stages.
func stagesProgram(t *testing.T) string {
	t.Helper()
	if runtime.GOARCH != "amd64" {
		missing(t, "the self-unsharing entry point exists on amd64 only")
	}
	gobin, err := exec.LookPath("go")
	testutil.Require(t, err == nil, "the go tool is not on PATH: it builds testdata/entry")
	p := filepath.Join(t.TempDir(), "entry")
	build := exec.Command(gobin, "build", "-buildvcs=false", "-ldflags=-E="+rootless.EntrySymbol, "-o", p, "./testdata/entry")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building testdata/entry: %v\n%s", err, out)
	}
	return p
}

// startErr launches c and starts it without a config, under a deadline, so
// that a handshake in which both sides wait fails the test instead of
// hanging it.
func startErr(t *testing.T, c *rootless.Cmd) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		l, err := c.Launch()
		if err == nil {
			var p *rootless.Process
			if p, err = l.Start(nil); err == nil {
				_, _ = p.Wait()
			}
		}
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("the handshake hung")
		return nil
	}
}

// TestSelfUnshare starts a stage whose program unshares its namespaces at
// its entry point, as the CLI starts the shim.
func TestSelfUnshare(t *testing.T) {
	needFullMap(t)
	prog := stagesProgram(t)
	tests := []struct {
		name    string
		program string
		flags   uintptr
		want    string
	}{
		// The program has no stage "probe", and its Dispatch says so only
		// once the child is mapped and has become root in its namespace.
		{"unshared", prog, unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC, `unknown stage "probe"`},
		// unshare(2) refuses the flags: the entry point's errno, reported.
		{"refused", prog, unix.CLONE_NEWUSER | 1, "unsharing namespaces: invalid argument"},
		// This test binary starts at Go's entry point: its Dispatch must
		// say so rather than wait for maps the parent will not write.
		{"no entry point", "", unix.CLONE_NEWUSER | unix.CLONE_NEWNS, "not linked with its entry point"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var errb bytes.Buffer
			c := &rootless.Cmd{Stage: "probe", Program: tt.program, Cloneflags: tt.flags, SelfUnshare: true, Stderr: &errb}
			err := startErr(t, c)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, rootless.ErrSetup) {
				t.Fatalf("start = %v (stderr %q), want a setup error containing %q", err, errb.String(), tt.want)
			}
		})
	}
}
