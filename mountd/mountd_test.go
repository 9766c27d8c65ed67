package mountd

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"nook/internal/testutil"
	"nook/rootless"
)

// TestMain makes the test binary the server Start re-executes.
func TestMain(m *testing.M) {
	if code, ok := rootless.Dispatch(map[string]func() int{StageName: Stage}); ok {
		os.Exit(code)
	}
	if _, ok := os.LookupEnv("GORACE"); !ok {
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	os.Exit(m.Run())
}

func needFuse(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	testutil.Require(t, err == nil, "/dev/fuse is not usable")
	f.Close()
	if os.Geteuid() != 0 {
		_, err := exec.LookPath("fusermount3")
		testutil.Require(t, err == nil, "fusermount3 is not installed")
	}
}

// mounted reports whether mnt is a mount point of this mount namespace.
func mounted(t *testing.T, mnt string) bool {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) > 4 && fields[4] == mnt {
			return true
		}
	}
	return false
}

// detach lazily unmounts mnt behind the server's back, as `umount -l`
// does: the server's own unmount then fails.
func detach(t *testing.T, mnt string) {
	t.Helper()
	if os.Geteuid() == 0 {
		if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
			t.Fatal(err)
		}
		return
	}
	if out, err := exec.Command("fusermount3", "-u", "-z", mnt).CombinedOutput(); err != nil {
		t.Fatalf("fusermount3 -u -z: %v: %s", err, out)
	}
}

// TestSIGTERMEndsTheServer: a daemonized server serves the union until
// SIGTERM, then unmounts it and exits 0; when the union was detached
// behind its back, so that it cannot unmount it, it exits all the same.
func TestSIGTERMEndsTheServer(t *testing.T) {
	needFuse(t)
	for _, tc := range []struct {
		name     string
		detached bool
	}{{"mounted", false}, {"already detached", true}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			lower, mnt := filepath.Join(dir, "lower"), filepath.Join(dir, "mnt")
			for _, d := range []string{lower, mnt} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(lower, "f"), []byte("lower"), 0o644); err != nil {
				t.Fatal(err)
			}
			var logs strings.Builder
			pid, err := Start(Config{Lowers: []string{lower}, Mountpoint: mnt}, &logs)
			if err != nil {
				t.Fatalf("Start: %v (logs: %s)", err, logs.String())
			}
			t.Cleanup(func() {
				_ = unix.Kill(pid, unix.SIGKILL)
				_ = unix.Unmount(mnt, unix.MNT_DETACH)
			})
			got, err := os.ReadFile(filepath.Join(mnt, "f"))
			if string(got) != "lower" {
				t.Fatalf("reading through the union: %q, %v; want %q", got, err, "lower")
			}
			if tc.detached {
				// A descriptor keeps the detached union alive, as
				// another mount namespace's copy would.
				hold, err := os.Open(filepath.Join(mnt, "f"))
				if err != nil {
					t.Fatal(err)
				}
				defer hold.Close()
				detach(t, mnt)
			}
			if err := unix.Kill(pid, unix.SIGTERM); err != nil {
				t.Fatal(err)
			}
			exited := make(chan unix.WaitStatus, 1)
			go func() {
				var ws unix.WaitStatus
				_, _ = unix.Wait4(pid, &ws, 0, nil)
				exited <- ws
			}()
			select {
			case ws := <-exited:
				if got := ws.ExitStatus(); !ws.Exited() || got != 0 {
					t.Errorf("server ended with %v, want exit status 0", ws)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("the server did not exit on SIGTERM")
			}
			if mounted(t, mnt) {
				t.Errorf("%s is still mounted after the server exited", mnt)
			}
		})
	}
}

// TestStartReportsMountError: a server that cannot mount makes Start
// return the union's own error, naming the layer at fault.
func TestStartReportsMountError(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	_, err := Start(Config{Lowers: []string{missing}, Mountpoint: t.TempDir()}, nil)
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("Start = %v, want an error naming %s", err, missing)
	}
}
