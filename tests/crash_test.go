package tests

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestImportKilledMidway kills nook while it unpacks: the store keeps its
// images, shows no new one, and the next writer clears the debris.
func TestImportKilledMidway(t *testing.T) {
	e := newEnv(t)
	e.ok(busyboxRootfs(t), "import", "-", "base")
	before := snapshot(t, e.store)

	cmd := exec.Command(nookBin, "import", "-", "half")
	cmd.Env = append(os.Environ(), "NOOK_ROOT="+e.store)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	big, err := os.ReadFile(bigRootfs(t, 8<<20))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stdin.Write(big[:len(big)/2]); err != nil {
		t.Fatalf("feeding import: %v (%s)", err, stderr.String())
	}
	// Wait until the unpacker has written into tmp/, then kill the command.
	deadline := time.Now().Add(30 * time.Second)
	for countEntries(t, filepath.Join(e.store, "tmp")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("import never started writing: %s", stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	stdin.Close()

	// The worker in the user namespace dies with the command (parent-death
	// signal); wait for it to let go of the lock.
	var images string
	for time.Now().Before(deadline) {
		if images = e.ok(nil, "images", "--format", "{{.Repository}}"); images == "base\n" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if images != "base\n" {
		t.Fatalf("after the kill, images = %q, want only base", images)
	}
	if countEntries(t, filepath.Join(e.store, "tmp")) == 0 {
		t.Fatal("the killed import left nothing in tmp/: was it killed mid-write?")
	}
	if got := withoutTmp(snapshot(t, e.store)); got != withoutTmp(before) {
		t.Errorf("a killed import changed the store outside tmp/:\n%s\n---\n%s", before, got)
	}
	// The next writer takes the lock and clears what the killed one left.
	e.ok(tarOf(t, file("x", "y")), "import", "-", "next")
	if n := countEntries(t, filepath.Join(e.store, "tmp")); n != 0 {
		t.Errorf("tmp/ still holds %d entries after the next import", n)
	}
	if got := e.ok(nil, "images", "--format", "{{.Repository}}"); !strings.Contains(got, "next") || strings.Contains(got, "half") {
		t.Errorf("images = %q", got)
	}
}

func withoutTmp(snap string) string {
	var keep []string
	for _, l := range strings.Split(snap, "\n") {
		if l != "tmp" && !strings.HasPrefix(l, "tmp/") && !strings.HasPrefix(l, "tmp ") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

func TestInfo(t *testing.T) {
	e := newEnv(t)
	out := e.ok(nil, "info")
	for _, check := range []string{"/dev/fuse", "user namespaces", "subordinate ids", "store filesystem"} {
		if !strings.Contains(out, check) {
			t.Errorf("info does not report %q:\n%s", check, out)
		}
	}
	if strings.Contains(out, "FAIL") {
		t.Errorf("info finds this CI host unfit:\n%s", out)
	}
}
