package image

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpenChecksRoot: the store directory must be the caller's and
// writable by no one else, with no symbolic link at its top (another user
// planted "containers -> /their/dir" in a 0777 --root, and nook created
// container directories there); each refusal is one line naming the
// directory and the remedy, and nothing is created.
func TestOpenChecksRoot(t *testing.T) {
	notMine := "/" // root's; for root, a directory given away below
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string) string // returns the root to open
		want  string                                // "" to open
	}{
		{"new directory", func(t *testing.T, dir string) string { return filepath.Join(dir, "a", "store") }, ""},
		{"private", func(t *testing.T, dir string) string { return mkdir(t, dir, "s", 0o700) }, ""},
		{"readable by others", func(t *testing.T, dir string) string { return mkdir(t, dir, "s", 0o755) }, ""},
		{"writable by all", func(t *testing.T, dir string) string { return mkdir(t, dir, "s", 0o777) }, "is writable by others (mode 0777): run chmod go-w"},
		{"writable by the group", func(t *testing.T, dir string) string { return mkdir(t, dir, "s", 0o770) }, "is writable by others (mode 0770)"},
		{"another user's", func(t *testing.T, dir string) string {
			if os.Geteuid() != 0 {
				return notMine
			}
			d := mkdir(t, dir, "s", 0o700)
			if err := os.Chown(d, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			return d
		}, "not to you"},
		{"planted link", func(t *testing.T, dir string) string {
			d := mkdir(t, dir, "s", 0o700)
			if err := os.Symlink(mkdir(t, dir, "theirs", 0o777), filepath.Join(d, "containers")); err != nil {
				t.Fatal(err)
			}
			return d
		}, "containers is a symbolic link"},
		{"planted link below the top", func(t *testing.T, dir string) string {
			d := mkdir(t, dir, "s", 0o700)
			mkdir(t, d, "blobs", 0o700)
			if err := os.Symlink(mkdir(t, dir, "theirs", 0o777), filepath.Join(d, "blobs", "sha256")); err != nil {
				t.Fatal(err)
			}
			return d
		}, "blobs/sha256 is a symbolic link"},
		// Another user could rename the store away and put theirs in its
		// place between the check and the open.
		{"parent writable by all", func(t *testing.T, dir string) string {
			return filepath.Join(mkdir(t, dir, "open", 0o777), "s")
		}, "a parent of store"},
		{"grandparent writable by all", func(t *testing.T, dir string) string {
			return mkdir(t, mkdir(t, dir, "open", 0o777), "s", 0o700) + "/new/store"
		}, "is writable by others (mode 0777)"},
		{"sticky parent writable by all", func(t *testing.T, dir string) string {
			return filepath.Join(mkdir(t, dir, "sticky", 0o777|os.ModeSticky), "s")
		}, ""},
		// Planted while the store was open to others, and left when it
		// was closed.
		{"planted open directory", func(t *testing.T, dir string) string {
			d := mkdir(t, dir, "s", 0o700)
			mkdir(t, d, "containers", 0o777)
			return d
		}, "containers is writable by others (mode 0777)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			root := tc.setup(t, dir)
			_, err := Open(root, Options{})
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrUnsafeRoot) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), root) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("Open(%s) = %v; want ErrUnsafeRoot, one line naming it and %q", root, err, tc.want)
			}
			if root != notMine {
				if ents, _ := os.ReadDir(root); len(ents) > 1 {
					t.Errorf("a refused store was populated: %v", ents)
				}
			}
			if theirs, _ := os.ReadDir(filepath.Join(dir, "theirs")); len(theirs) != 0 {
				t.Errorf("something was created through the planted link: %v", theirs)
			}
		})
	}
}

func mkdir(t *testing.T, dir, name string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.Mkdir(p, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return p
}
