package host

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestMinorNamesTheFuseConnection(t *testing.T) {
	// fusectl names a connection by the minor number of the mount's device.
	for _, tt := range []struct{ major, minor uint32 }{{0, 39}, {0, 255}, {0, 256}, {0, 1 << 19}, {8, 1}} {
		if got := minor(unix.Mkdev(tt.major, tt.minor)); got != tt.minor {
			t.Errorf("minor(%d:%d) = %d", tt.major, tt.minor, got)
		}
	}
}

func TestTreeMemoryCountsChildren(t *testing.T) {
	alone, err := TreeMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if alone.RSS <= 0 || alone.Peak < alone.RSS {
		t.Errorf("own memory %+v: want 0 < RSS <= Peak", alone)
	}
	child := exec.Command("sleep", "10")
	if err := child.Start(); err != nil {
		t.Fatalf("starting sleep: %v", err)
	}
	defer func() { _ = child.Process.Kill(); _ = child.Wait() }()
	// Until sleep has exec'd it is a copy of this process; either way it counts.
	withChild, err := TreeMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if withChild.Procs != alone.Procs+1 {
		t.Errorf("process count %d with a child, %d without", withChild.Procs, alone.Procs)
	}
	if _, err := TreeMemory(1 << 30); err == nil {
		t.Error("TreeMemory of a pid that cannot exist succeeded")
	}
}

func TestMachineLine(t *testing.T) {
	line := Machine(filepath.Join(t.TempDir(), "not", "yet"))
	for _, want := range []string{"Linux", "cores", "GiB RAM", "UTC"} {
		if !strings.Contains(line, want) {
			t.Errorf("machine line %q lacks %q", line, want)
		}
	}
	if strings.Contains(line, "unknown filesystem") {
		t.Errorf("machine line %q: statfs of a temp dir failed", line)
	}
}
