package tests

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nook/internal/testutil"
)

// nookBin is the binary under test.
var nookBin string

func TestMain(m *testing.M) {
	u, _ := user.Current()
	name := "?"
	if u != nil {
		name = u.Username
	}
	fmt.Fprintf(os.Stderr, "e2e: running as uid=%d(%s)\n", os.Geteuid(), name)
	if os.Geteuid() == 0 && testutil.InCI() {
		fmt.Fprintln(os.Stderr, "e2e: refusing to run as root under CI: these tests prove nook works rootless")
		os.Exit(1)
	}
	nookBin = os.Getenv("NOOK_BIN")
	cleanup := func() {}
	if nookBin == "" {
		dir, err := os.MkdirTemp("", "nook-e2e-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		cleanup = func() { os.RemoveAll(dir) }
		nookBin = filepath.Join(dir, "nook")
		build := exec.Command("bash", "../build.sh", nookBin)
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: building nook: %v\n%s", err, out)
			os.Exit(1)
		}
	}
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// env is one test's private world: its own store and XDG directories.
type env struct {
	t     *testing.T
	home  string
	store string
	wrap  []string // a command nook runs under, with its arguments
	// extraEnv is added to nook's environment (REGISTRY_AUTH_FILE=…).
	extraEnv []string
	dir      string // the working directory nook runs in, if set
}

func newEnv(t *testing.T) *env {
	t.Helper()
	home := t.TempDir()
	e := &env{t: t, home: home, store: filepath.Join(home, "store")}
	t.Cleanup(func() { e.removeStore() })
	return e
}

// removeStore deletes the store through nook, inside the user namespace,
// because unpacked layers hold files of subordinate ids the user cannot
// delete directly.
func (e *env) removeStore() {
	if _, err := os.Stat(e.store); err != nil {
		return
	}
	e.nook(nil, "image", "prune", "-a", "-f")
}

// result is what one nook run did.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
}

// nook runs the binary with stdin (may be nil) and returns what it did.
func (e *env) nook(stdin []byte, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, nookBin, args...)
	if e.wrap != nil { // run inside another command, such as nsenter
		cmd = exec.CommandContext(ctx, e.wrap[0], append(append(e.wrap[1:len(e.wrap):len(e.wrap)], nookBin), args...)...)
	}
	cmd.Dir = e.dir
	cmd.Env = append(os.Environ(),
		"NOOK_ROOT="+e.store,
		"XDG_DATA_HOME="+filepath.Join(e.home, "data"),
		"XDG_CONFIG_HOME="+filepath.Join(e.home, "config"),
		"DOCKER_CONFIG="+filepath.Join(e.home, "docker"),
	)
	cmd.Env = append(cmd.Env, e.extraEnv...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("running nook %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// ok runs nook and fails the test unless it exits 0.
func (e *env) ok(stdin []byte, args ...string) string {
	e.t.Helper()
	r := e.nook(stdin, args...)
	if r.code != 0 {
		e.t.Fatalf("nook %s: %s", strings.Join(args, " "), r)
	}
	return r.stdout
}

// lookupName reports whether name is the current user's login name.
func lookupName(name string) bool {
	u, err := user.Current()
	return err == nil && u.Username == name
}
