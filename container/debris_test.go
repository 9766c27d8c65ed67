package container

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestRemoveDebris removes only what a killed create left: an old
// directory without a config that no shim holds.
func TestRemoveDebris(t *testing.T) {
	m := &Manager{root: t.TempDir()}
	old := time.Now().Add(-time.Hour)
	mk := func(name string, files ...string) string {
		dir := filepath.Join(m.root, name)
		if err := os.MkdirAll(filepath.Join(dir, "upper"), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	mk("old-debris")
	mk("old-debris-with-lock", lockFile)
	mk("young-debris")
	held := mk("held", lockFile)
	mk("container", configFile, lockFile)
	for _, name := range []string{"old-debris", "old-debris-with-lock", "held", "container"} {
		if err := os.Chtimes(filepath.Join(m.root, name), old, old); err != nil {
			t.Fatal(err)
		}
	}
	lock, err := os.Open(filepath.Join(held, lockFile))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}

	removed, err := m.RemoveDebris()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(removed)
	if want := []string{"old-debris", "old-debris-with-lock"}; !slices.Equal(removed, want) {
		t.Errorf("removed %q, want %q", removed, want)
	}
	for _, name := range []string{"young-debris", "held", "container"} {
		if _, err := os.Stat(filepath.Join(m.root, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, name := range removed {
		if _, err := os.Stat(filepath.Join(m.root, name)); !os.IsNotExist(err) {
			t.Errorf("%s still there: %v", name, err)
		}
	}
}
