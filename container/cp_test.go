package container

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSideOpenStaysInRoot resolves hostile paths in a container root: each
// lands inside it or fails, never on the file beside the root.
func TestSideOpenStaysInRoot(t *testing.T) {
	outer := t.TempDir()
	root := filepath.Join(outer, "root")
	for _, d := range []string{"etc", "tmp", "deep/er"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for p, body := range map[string]string{"etc/passwd": "inside", "tmp/x": "x", filepath.Join("..", "outside"): "outside"} {
		if err := os.WriteFile(filepath.Join(root, p), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{
		"l_root": "/", "l_up": "../../../../..", "l_passwd": "/etc/passwd", "mid": "/tmp",
		"deep/er/rel": "../../etc", "l_out": "../outside", "l_abs_out": filepath.Join(outer, "outside"),
	} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	s := side{root: fd, inRoot: true, name: "test"}
	tests := []struct {
		path   string
		follow bool
		want   string // file inside root it must be; "" for ErrNoSuchPath
	}{
		{"/etc/passwd", false, "etc/passwd"},
		{"/l_passwd", true, "etc/passwd"},
		{"/l_passwd", false, "l_passwd"}, // the link itself
		{"/l_root/etc/passwd", false, "etc/passwd"},
		{"/l_up/etc/passwd", false, "etc/passwd"},
		{"/../../etc/passwd", false, "etc/passwd"},
		{"/mid/x", false, "tmp/x"},
		{"/deep/er/rel/passwd", false, "etc/passwd"},
		{"/l_out", true, ""},
		{"/l_abs_out", true, ""},
		{"/l_up/outside", false, ""},
		{"/l_root" + outer + "/outside", false, ""},
		{"/nothing", false, ""},
		{"/etc/passwd/x", false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			got, err := s.open(tc.path, tc.follow)
			if tc.want == "" {
				if !errors.Is(err, ErrNoSuchPath) {
					t.Errorf("open = %v, want ErrNoSuchPath", err)
				}
				if err == nil {
					unix.Close(got)
				}
				return
			}
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			defer unix.Close(got)
			var a, b unix.Stat_t
			if err := unix.Fstat(got, &a); err != nil {
				t.Fatal(err)
			}
			if err := unix.Lstat(filepath.Join(root, tc.want), &b); err != nil {
				t.Fatal(err)
			}
			if a.Ino != b.Ino || a.Dev != b.Dev {
				t.Errorf("opened inode %d, want %s (%d)", a.Ino, tc.want, b.Ino)
			}
		})
	}
}

func TestTreeNames(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"dir", "./", "dir/"},
		{"dir", "a/b", "dir/a/b"},
		{"dir", "./a", "dir/a"},
		{"", "./", ""},
		{"", "a/b", "a/b"},
	}
	for _, tc := range tests {
		if got := treeNames(tc.name)(tc.in); got != tc.want {
			t.Errorf("treeNames(%q)(%q) = %q, want %q", tc.name, tc.in, got, tc.want)
		}
	}
}
