package rootless_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"nook/internal/testutil"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"nook/rootless"
)

// mode is one way of starting a stage.
type mode struct {
	name  string
	flags uintptr
	maps  func(t *testing.T) rootless.IDMaps
}

func modes() []mode {
	return []mode{
		{"plain", 0, func(*testing.T) rootless.IDMaps { return rootless.IDMaps{} }},
		{"single", unix.CLONE_NEWUSER | unix.CLONE_NEWNS, func(*testing.T) rootless.IDMaps { return singleMap() }},
		{"full", unix.CLONE_NEWUSER | unix.CLONE_NEWNS, needFullMap},
	}
}

// runReport runs the "report" stage and decodes what it printed.
func runReport(t *testing.T, c *rootless.Cmd) report {
	t.Helper()
	var out, errb bytes.Buffer
	c.Stage, c.Stdout, c.Stderr = "report", &out, &errb
	code, err := c.Run()
	if err != nil || code != 0 {
		t.Fatalf("report: code %d, err %v, stderr %q", code, err, errb.String())
	}
	var r report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("decoding report %q: %v", out.String(), err)
	}
	return r
}

// chownTarget is a file the stage may chown, in a directory the caller owns.
func chownTarget(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func owner(t *testing.T, p string) int {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return int(st.Uid)
}

func TestFullMap(t *testing.T) {
	maps := needFullMap(t)
	f := chownTarget(t)
	r := runReport(t, &rootless.Cmd{Args: []string{f}, Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_NEWNS})
	wantU := fmt.Sprintf("0 %d 1\n1 %d %d", os.Geteuid(), maps.UIDs[1].HostID, maps.UIDs[1].Size)
	wantG := fmt.Sprintf("0 %d 1\n1 %d %d", os.Getegid(), maps.GIDs[1].HostID, maps.GIDs[1].Size)
	if !strings.HasPrefix(r.UIDMap, wantU) || !strings.HasPrefix(r.GIDMap, wantG) {
		t.Errorf("maps inside:\n%s\n%s\nwant prefixes:\n%s\n%s", r.UIDMap, r.GIDMap, wantU, wantG)
	}
	if r.Euid != 0 || r.Egid != 0 || !r.InUserNS {
		t.Errorf("inside: euid %d egid %d InUserNS %v, want 0 0 true", r.Euid, r.Egid, r.InUserNS)
	}
	if r.ChownErrno != 0 {
		t.Fatalf("chown to 65534 inside: %v", syscall.Errno(r.ChownErrno))
	}
	if got, want := owner(t, f), maps.UIDs[1].HostID+65533; got != want {
		t.Errorf("owner outside = %d, want %d", got, want)
	}
	if len(r.Internal) != 0 {
		t.Errorf("internal variables reached the stage: %q", r.Internal)
	}
	if r.Dumpable != 1 {
		t.Errorf("stage is not dumpable: its /proc files belong to the host's root")
	}
}

func TestSingleMap(t *testing.T) {
	f := chownTarget(t)
	r := runReport(t, &rootless.Cmd{Args: []string{f}, Cloneflags: unix.CLONE_NEWUSER, IDMaps: singleMap()})
	if want := fmt.Sprintf("0 %d 1", os.Geteuid()); r.UIDMap != want {
		t.Errorf("uid_map inside = %q, want %q", r.UIDMap, want)
	}
	if r.Euid != 0 || !r.InUserNS {
		t.Errorf("inside: euid %d InUserNS %v, want 0 true", r.Euid, r.InUserNS)
	}
	if syscall.Errno(r.ChownErrno) != unix.EINVAL {
		t.Errorf("chown to unmapped 65534 = %v, want EINVAL", syscall.Errno(r.ChownErrno))
	}
}

func TestPlainReexec(t *testing.T) {
	r := runReport(t, &rootless.Cmd{})
	if r.InUserNS || r.Euid != os.Geteuid() {
		t.Errorf("plain re-exec: InUserNS %v euid %d, want false %d", r.InUserNS, r.Euid, os.Geteuid())
	}
	if len(r.Internal) != 0 {
		t.Errorf("internal variables reached the stage: %q", r.Internal)
	}
}

// TestNested re-executes from inside a stage: the grandchild must start
// clean (no leftover handshake state) and still be namespace root.
func TestNested(t *testing.T) {
	for _, m := range modes()[1:] {
		t.Run(m.name, func(t *testing.T) {
			var out bytes.Buffer
			c := &rootless.Cmd{Stage: "nested", Cloneflags: m.flags, IDMaps: m.maps(t), Stdout: &out, Stderr: os.Stderr}
			if code, err := c.Run(); code != 0 || err != nil {
				t.Fatalf("nested: code %d, err %v", code, err)
			}
			var r report
			if err := json.Unmarshal(out.Bytes(), &r); err != nil {
				t.Fatalf("decoding %q: %v", out.String(), err)
			}
			if !r.InUserNS || r.Euid != 0 || len(r.Internal) != 0 {
				t.Errorf("grandchild: InUserNS %v euid %d internal %q", r.InUserNS, r.Euid, r.Internal)
			}
		})
	}
}

func TestConfigRoundTrip(t *testing.T) {
	big := strings.Repeat("x", 1<<20) // beyond the socket buffer
	configs := map[string]any{
		"nil":    nil,
		"struct": map[string]any{"image": "busybox", "args": []any{"sh", "-c", "echo hi"}, "n": 3.0},
		"large":  map[string]any{"blob": big},
	}
	for _, m := range modes() {
		for name, cfg := range configs {
			t.Run(m.name+"/"+name, func(t *testing.T) {
				var out, errb bytes.Buffer
				c := &rootless.Cmd{Stage: "config", Cloneflags: m.flags, IDMaps: m.maps(t), Config: cfg, Stdout: &out, Stderr: &errb}
				code, err := c.Run()
				if err != nil || code != 0 {
					t.Fatalf("code %d, err %v, stderr %q", code, err, errb.String())
				}
				var got any
				if err := json.Unmarshal(out.Bytes(), &got); err != nil {
					t.Fatal(err)
				}
				want, _ := json.Marshal(cfg)
				gotJSON, _ := json.Marshal(got)
				if !bytes.Equal(want, gotJSON) {
					t.Errorf("config came back as %.80s, want %.80s", gotJSON, want)
				}
			})
		}
	}
}

// TestUnreadLargeConfig: a stage that never reads its config must not hang
// the parent.
func TestUnreadLargeConfig(t *testing.T) {
	c := &rootless.Cmd{Stage: "nop", Config: strings.Repeat("y", 4<<20)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if code, err := c.Run(); code != 0 || err != nil {
			t.Errorf("code %d, err %v", code, err)
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run hung on a config the stage never read")
	}
}

func TestSetupError(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			var errb bytes.Buffer
			c := &rootless.Cmd{Stage: "no-such-stage", Cloneflags: m.flags, IDMaps: m.maps(t), Stderr: &errb}
			code, err := c.Run()
			if !errors.Is(err, rootless.ErrSetup) || !strings.Contains(err.Error(), `unknown stage "no-such-stage"`) {
				t.Fatalf("code %d, err %v; want ErrSetup naming the stage", code, err)
			}
			if lines := strings.Split(strings.TrimSpace(errb.String()), "\n"); len(lines) != 1 {
				t.Errorf("stderr has %d lines, want 1: %q", len(lines), errb.String())
			}
		})
	}
}

func TestMapperError(t *testing.T) {
	maps := needFullMap(t)
	// A subordinate range the user was never given.
	maps.UIDs = append(maps.UIDs[:1:1], rootless.IDMap{ContainerID: 1, HostID: 7_000_000, Size: 10})
	c := &rootless.Cmd{Stage: "nop", Cloneflags: unix.CLONE_NEWUSER, IDMaps: maps}
	_, err := c.Run()
	if !errors.Is(err, rootless.ErrSetup) || !strings.Contains(err.Error(), "newuidmap") ||
		!strings.Contains(err.Error(), "7000000") {
		t.Fatalf("err = %v; want ErrSetup with newuidmap's command and output", err)
	}
	t.Log(err)
}

func TestExitCodes(t *testing.T) {
	for _, m := range modes() {
		for _, tc := range []struct {
			name string
			exit string
			sig  syscall.Signal
			want int
		}{
			{"zero", "0", 0, 0},
			{"three", "3", 0, 3},
			{"max", "254", 0, 254},
			{"sigterm", "", unix.SIGTERM, 128 + 15},
			{"sigkill", "", unix.SIGKILL, 128 + 9},
		} {
			t.Run(m.name+"/"+tc.name, func(t *testing.T) {
				c := &rootless.Cmd{Stage: "exit", Args: []string{tc.exit}, Cloneflags: m.flags, IDMaps: m.maps(t)}
				var stdout io.ReadCloser
				if tc.sig != 0 {
					r, w, err := os.Pipe()
					if err != nil {
						t.Fatal(err)
					}
					c.Stage, c.Stdout, stdout = "sleep", w, r
					defer r.Close()
					defer w.Close()
				}
				p, err := c.Start()
				if err != nil {
					t.Fatal(err)
				}
				if tc.sig != 0 {
					// Signal only once the stage runs, not the Go runtime's start.
					if line, _ := bufio.NewReader(stdout).ReadString('\n'); line != "ready\n" {
						t.Fatalf("sleep stage said %q", line)
					}
					if err := p.Signal(tc.sig); err != nil {
						t.Fatal(err)
					}
				}
				code, err := p.Wait()
				if err != nil || code != tc.want {
					t.Errorf("Wait = %d, %v; want %d", code, err, tc.want)
				}
			})
		}
	}
}

// TestRunForwardsSignals sends SIGTERM to the test process while Run waits:
// the child must get it, and the test process must survive it.
func TestRunForwardsSignals(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	res := make(chan int, 1)
	go func() {
		code, err := (&rootless.Cmd{Stage: "sleep", Stdout: w}).Run()
		if err != nil {
			t.Error(err)
		}
		res <- code
	}()
	if line, _ := bufio.NewReader(r).ReadString('\n'); line != "ready\n" {
		t.Fatalf("sleep stage said %q", line)
	}
	w.Close()
	if err := unix.Kill(os.Getpid(), unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-res:
		if code != 128+15 {
			t.Errorf("code = %d, want %d", code, 128+15)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("SIGTERM was not forwarded")
	}
}

func TestStdio(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			c := &rootless.Cmd{Stage: "cat", Cloneflags: m.flags, IDMaps: m.maps(t),
				Stdin: strings.NewReader("through stdin"), Stdout: &out, Stderr: &errb}
			if code, err := c.Run(); code != 0 || err != nil {
				t.Fatalf("code %d, err %v", code, err)
			}
			if out.String() != "through stdin" || errb.String() != "to stderr" {
				t.Errorf("stdout %q stderr %q", out.String(), errb.String())
			}
		})
	}
}

func TestExtraFiles(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			c := &rootless.Cmd{Stage: "extra", Cloneflags: m.flags, IDMaps: m.maps(t), ExtraFiles: []*os.File{w}}
			code, err := c.Run()
			w.Close()
			if code != 0 || err != nil {
				t.Fatalf("code %d, err %v", code, err)
			}
			if b, _ := io.ReadAll(r); string(b) != "via extra file" {
				t.Errorf("fd %d carried %q", rootless.ExtraFilesFD, b)
			}
		})
	}
}

// TestPdeathsig: a stage whose parent exits must get its parent-death
// signal, also after the full map's second exec (which clears it).
func TestPdeathsig(t *testing.T) {
	for _, m := range []struct{ name, arg string }{{"single", "single"}, {"full", "full"}} {
		t.Run(m.name, func(t *testing.T) {
			if m.name == "full" {
				needFullMap(t)
			}
			var out, errb bytes.Buffer
			code, err := (&rootless.Cmd{Stage: "spawn", Args: []string{m.arg}, Stdout: &out, Stderr: &errb}).Run()
			if err != nil || code != 0 {
				t.Fatalf("spawn: code %d, err %v, stderr %q", code, err, errb.String())
			}
			pid, err := strconv.Atoi(strings.TrimSpace(out.String()))
			if err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for alive(pid) {
				if time.Now().After(deadline) {
					_ = unix.Kill(pid, unix.SIGKILL)
					t.Fatalf("grandchild %d outlived its parent", pid)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// alive: the process exists and is not a zombie waiting for a reaper.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func TestRootIdentityMap(t *testing.T) {
	testutil.RequireRoot(t) // the identity map of the whole range is root's
	f := chownTarget(t)
	r := runReport(t, &rootless.Cmd{Args: []string{f}, Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_NEWNS})
	if r.UIDMap != "0 0 4294967295" || !r.InUserNS || r.ChownErrno != 0 {
		t.Errorf("uid_map %q InUserNS %v chown errno %d", r.UIDMap, r.InUserNS, r.ChownErrno)
	}
	if got := owner(t, f); got != 65534 {
		t.Errorf("owner outside = %d, want 65534", got)
	}
}

func BenchmarkRunNop(b *testing.B) {
	for _, m := range modes() {
		b.Run(m.name, func(b *testing.B) {
			var maps rootless.IDMaps
			switch m.name {
			case "single":
				maps = singleMap()
			case "full":
				var err error
				if maps, err = rootless.CurrentIDMaps(); err != nil || !maps.Full || os.Geteuid() == 0 {
					b.Skip("no unprivileged full map")
				}
			}
			for b.Loop() {
				code, err := (&rootless.Cmd{Stage: "nop", Cloneflags: m.flags, IDMaps: maps}).Run()
				if code != 0 || err != nil {
					b.Fatal(code, err)
				}
			}
		})
	}
}
