package rootless_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"nook/internal/testutil"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"nook/rootless"
)

// TestMain makes the test binary its own re-exec target: a child started by
// rootless.Cmd runs one of testStages instead of the tests.
func TestMain(m *testing.M) {
	if code, ok := rootless.Dispatch(testStages()); ok {
		os.Exit(code)
	}
	if _, ok := os.LookupEnv("GORACE"); !ok {
		// The race runtime sleeps 1 s at exit by default; every stage pays it.
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	os.Exit(m.Run())
}

// report is what the "report" stage prints about itself.
type report struct {
	UIDMap, GIDMap string
	Euid, Egid     int
	InUserNS       bool
	ChownErrno     int      // of chown(os.Args[1], 65534, 65534), when given
	Internal       []string // _NOOK_ variables left in the environment
	Dumpable       int
}

func testStages() map[string]func() int {
	return map[string]func() int{
		"nop":    func() int { return 0 },
		"report": stageReport,
		"exit": func() int {
			n, _ := strconv.Atoi(os.Args[1])
			return n
		},
		"sleep": func() int {
			fmt.Println("ready")
			time.Sleep(time.Hour)
			return 0
		},
		"config": func() int {
			var v any
			if err := rootless.ReadConfig(&v); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			_ = json.NewEncoder(os.Stdout).Encode(v)
			return 0
		},
		"cat": func() int {
			_, _ = io.Copy(os.Stdout, os.Stdin)
			fmt.Fprint(os.Stderr, "to stderr")
			return 0
		},
		"extra": func() int {
			_, err := os.NewFile(rootless.ExtraFilesFD, "extra").WriteString("via extra file")
			return map[bool]int{true: 0, false: 1}[err == nil]
		},
		"spawn":  stageSpawn,
		"nested": stageNested,
	}
}

func stageReport() int {
	r := report{Euid: os.Geteuid(), Egid: os.Getegid(), InUserNS: rootless.InUserNS()}
	u, _ := os.ReadFile("/proc/self/uid_map")
	g, _ := os.ReadFile("/proc/self/gid_map")
	r.UIDMap, r.GIDMap = normMap(string(u)), normMap(string(g))
	if len(os.Args) > 1 {
		if err := os.Chown(os.Args[1], 65534, 65534); err != nil {
			var errno syscall.Errno
			errors.As(err, &errno)
			r.ChownErrno = int(errno)
		}
	}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "_NOOK_") {
			r.Internal = append(r.Internal, kv)
		}
	}
	r.Dumpable, _ = unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
	_ = json.NewEncoder(os.Stdout).Encode(r)
	return 0
}

// stageSpawn starts a "sleep" grandchild in a new user namespace with a
// parent-death signal, prints its pid and exits without waiting for it.
func stageSpawn() int {
	c := &rootless.Cmd{Stage: "sleep", Cloneflags: unix.CLONE_NEWUSER, Pdeathsig: unix.SIGKILL}
	if os.Args[1] == "single" {
		c.IDMaps = singleMap()
	}
	p, err := c.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(p.Pid())
	return 0
}

// stageNested re-executes plainly into "report", passing its output on.
func stageNested() int {
	code, err := (&rootless.Cmd{Stage: "report", Stdout: os.Stdout, Stderr: os.Stderr}).Run()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return code
}

// normMap turns uid_map's padded columns into "0 1001 1\n1 100000 65536".
func normMap(s string) string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	return strings.Join(lines, "\n")
}

func singleMap() rootless.IDMaps {
	return rootless.IDMaps{
		UIDs: []rootless.IDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}},
		GIDs: []rootless.IDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}},
	}
}

// missing skips a test that lacks something of the host, or fails it
// under CI=true where the host is meant to have everything.
func missing(t *testing.T, why string) {
	t.Helper()
	testutil.Require(t, false, why)
}

// needFullMap returns the subordinate-id maps of an unprivileged caller.
// As root the test belongs to the suite's unprivileged pass (tests/run.sh);
// to run it by hand: go test -c -race -o /tmp/r/rootless.test ./rootless &&
// chmod -R a+rx /tmp/r && runuser -u nook-ci -- /tmp/r/rootless.test -test.v
func needFullMap(t *testing.T) rootless.IDMaps {
	t.Helper()
	testutil.RequireUnprivileged(t)
	m, err := rootless.CurrentIDMaps()
	if err != nil {
		t.Fatal(err)
	}
	if !m.Full {
		missing(t, "no full id map: "+m.Why)
	}
	return m
}
