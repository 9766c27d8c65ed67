package rootless

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPopulate: an empty volume gets the mount point's files, directories
// and links with their modes and times (owners too, where this process
// may give them); a volume holding anything is left as it is.
func TestPopulate(t *testing.T) {
	src, dst, full := t.TempDir(), t.TempDir(), t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "d/e"), 0o750))
	must(os.WriteFile(filepath.Join(src, "d/f"), []byte("data"), 0o640))
	must(os.Symlink("d/f", filepath.Join(src, "l")))
	must(unix.Chmod(src, 0o1777))
	must(os.WriteFile(filepath.Join(full, "mine"), nil, 0o600))

	must(populate(src, dst))
	if b, err := os.ReadFile(filepath.Join(dst, "d/f")); err != nil || string(b) != "data" {
		t.Errorf("d/f = %q, %v", b, err)
	}
	for p, want := range map[string]os.FileMode{".": 0o1777, "d": 0o750, "d/e": 0o750, "d/f": 0o640} {
		var st unix.Stat_t
		must(unix.Lstat(filepath.Join(dst, p), &st))
		if got := os.FileMode(st.Mode & 0o7777); got != want {
			t.Errorf("%s mode = %o, want %o", p, got, want)
		}
	}
	if l, err := os.Readlink(filepath.Join(dst, "l")); err != nil || l != "d/f" {
		t.Errorf("link l = %q, %v", l, err)
	}
	fs, _ := os.Stat(filepath.Join(src, "d/f"))
	fd, _ := os.Stat(filepath.Join(dst, "d/f"))
	if !fs.ModTime().Equal(fd.ModTime()) {
		t.Errorf("d/f mtime %v, want %v", fd.ModTime(), fs.ModTime())
	}

	must(populate(src, full))
	if ents, _ := os.ReadDir(full); len(ents) != 1 || ents[0].Name() != "mine" {
		t.Errorf("a volume holding a file was filled: %v", ents)
	}
}
