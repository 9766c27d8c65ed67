package rootcopy

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
	s := rootSide(t, root, []string{"etc", "tmp", "deep/er"},
		map[string]string{"etc/passwd": "inside", "tmp/x": "x", filepath.Join("..", "outside"): "outside"},
		map[string]string{
			"l_root": "/", "l_up": "../../../../..", "l_passwd": "/etc/passwd", "mid": "/tmp",
			"deep/er/rel": "../../etc", "l_out": "../outside", "l_abs_out": filepath.Join(outer, "outside"),
		})
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
		if got := TreeNames(tc.name)(tc.in); got != tc.want {
			t.Errorf("TreeNames(%q)(%q) = %q, want %q", tc.name, tc.in, got, tc.want)
		}
	}
}

// TestTarget applies `docker cp`'s destination rules inside a root: a
// directory takes the copy under the source's name, a link as the last
// component is written through (inside the root), anything else is the
// copy's own name.
func TestTarget(t *testing.T) {
	s := rootSide(t, t.TempDir(), []string{"etc", "tmp"}, map[string]string{"etc/passwd": "", "tmp/x": ""},
		map[string]string{
			"l_file": "/tmp/x", "l_dangling": "../../../tmp/made", "l_etc": "/etc", "l_loop": "l_loop",
			"l_chain": "l_file",
		})
	file := Source{Name: "f"}
	tree := Source{IsDir: true, Name: "d"}
	contents := Source{IsDir: true, Contents: true, Name: "d"}
	for _, tc := range []struct {
		dst       string
		src       Source
		dir, name string
		err       error
	}{
		{"/tmp", file, "/tmp", "f", nil},
		{"/tmp", contents, "/tmp", "", nil},
		{"/tmp/new", file, "/tmp", "new", nil},
		{"/tmp/new", contents, "/tmp", "new", nil},
		{"/l_file", file, "/tmp", "x", nil},
		{"/l_chain", file, "/tmp", "x", nil},
		{"/l_dangling", file, "/tmp", "made", nil},
		{"/l_etc/", file, "/l_etc/", "f", nil},
		{"/l_etc", tree, "/etc", "d", nil},
		{"/l_loop", file, "", "", unix.ELOOP},
		{"/nowhere/", file, "", "", ErrNoSuchPath},
		{"/etc/passwd", tree, "", "", ErrCopyTarget},
	} {
		t.Run(tc.dst, func(t *testing.T) {
			dir, name, err := s.Target(tc.dst, tc.src)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("got %q %q, %v; want %v", dir, name, err, tc.err)
				}
				return
			}
			if err != nil || dir != tc.dir || name != tc.name {
				t.Errorf("got %q %q, %v; want %q %q", dir, name, err, tc.dir, tc.name)
			}
		})
	}
}

// rootSide builds a container root of dirs, files (path: body) and
// symbolic links (path: target) and returns it as a side that resolves
// inside it.
func rootSide(t *testing.T, root string, dirs []string, files, links map[string]string) Side {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for p, body := range files {
		if err := os.WriteFile(filepath.Join(root, p), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range links {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return Side{root: fd, inRoot: true, name: "test"}
}
