package rootless

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
)

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	for name, mode := range map[string]os.FileMode{"tool": 0o755, "plain": 0o644} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "adir"), 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=/nonexistent:" + dir}
	tests := []struct {
		name, want string
		ok         bool
	}{
		{"tool", filepath.Join(dir, "tool"), true},
		{"plain", "", false}, // not executable
		{"adir", "", false},  // a directory
		{"missing", "", false},
		{"/abs/path", "/abs/path", true}, // exec reports what is wrong
		{"./rel", "./rel", true},
	}
	for _, tc := range tests {
		got, err := lookPath(ownRoot{}, tc.name, env)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("lookPath(%q) = %q, %v; want %q, ok=%v", tc.name, got, err, tc.want, tc.ok)
		}
	}
}

func TestExecFailureCode(t *testing.T) {
	for errno, want := range map[unix.Errno]int{
		unix.ENOENT: ExitNotFound, unix.ENOTDIR: ExitNotFound,
		unix.EACCES: ExitCannotExec, unix.ENOEXEC: ExitCannotExec, unix.EISDIR: ExitCannotExec,
		unix.EPERM: ExitCannotExec, unix.ENOMEM: ExitSetupFailed,
	} {
		if got := execFailureCode(fmt.Errorf("starting: %w", errno)); got != want {
			t.Errorf("execFailureCode(%v) = %d, want %d", errno, got, want)
		}
	}
}

func TestPayloadEnv(t *testing.T) {
	got := InitProcess{Env: []string{"A=1"}, Terminal: true}.Environ("/home/u")
	want := []string{"A=1", "PATH=" + DefaultPath, "HOME=/home/u", "TERM=xterm"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	got = InitProcess{Env: []string{"PATH=/x", "HOME=/h", "TERM=dumb"}, Terminal: true}.Environ("/home/u")
	if want := []string{"PATH=/x", "HOME=/h", "TERM=dumb"}; !reflect.DeepEqual(got, want) {
		t.Errorf("image values were overridden: %q", got)
	}
}

func TestMountFlags(t *testing.T) {
	flags, data, ro := mountFlags([]string{"ro", "nosuid", "nodev", "noexec", "size=1m", "mode=1777", "rw"})
	if flags != unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC || data != "size=1m,mode=1777" || !ro {
		t.Errorf("mountFlags = %#x, %q, %v", flags, data, ro)
	}
}

func TestMountpointStaysInRoot(t *testing.T) {
	root := t.TempDir()
	// A link in the image pointing out of the root must not lead there.
	if err := os.Symlink("/", filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	p, err := mountpoint(root, "/escape/etc/x", false)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(root, "etc", "x"); p != want {
		t.Errorf("mountpoint resolved to %s, want %s", p, want)
	}
	if _, err := os.Stat(p); err != nil {
		t.Errorf("mount point file not created: %v", err)
	}
}
