package fusefs

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"nook/internal/testutil"

	"golang.org/x/sys/unix"
)

// semCase is one overlayfs behaviour: layers, an operation through the
// mount, and what must hold afterwards. Each case runs over nook's union
// and over kernel overlayfs; both must show the same tree, the upper
// directories must match (unless upperDiffers says why not), and the upper
// directory read offline over the lowers must show the same tree again.
type semCase struct {
	name         string
	lowers       [][]ent // top first
	upper        []ent
	op           func(t *testing.T, mnt string)
	check        func(t *testing.T, view map[string]string)
	upperDiffers string // why the upper directories may differ
}

var t0 = time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)

func semCases() []semCase {
	base := []ent{
		D("d").Owner(1000, 1000).Mode(0o750).Mtime(t0),
		F("d/a", "lower a").Owner(1000, 1000).Mode(0o640).Xattr("user.k", "v").Mtime(t0),
		F("d/b", "lower b"),
		D("d/sub"), F("d/sub/x", "x"),
		D("e"),
		F("top", "top"),
		L("link", "d/a"),
	}
	return []semCase{
		{name: "merge", lowers: [][]ent{
			{F("d/a", "upper layer a"), W("d/b"), O("o"), F("o/new", "n"), D("d/sub"), F("d/sub/y", "y")},
			{F("d/a", "old a"), F("d/b", "b"), D("o"), F("o/old", "o"), F("d/sub/x", "x"), F("gone", "g")},
			{F("gone", "deep"), F("o/older", "o")},
		}, check: wantView(map[string]string{"d/a": "", "o/new": "", "d/sub/x": "", "d/sub/y": ""},
			"d/b", "o/old", "o/older")},
		{name: "whiteout in middle layer", lowers: [][]ent{{F("x", "1")}, {W("y"), W("d")}, {F("y", "y"), D("d"), F("d/z", "z")}},
			check: wantView(map[string]string{"x": ""}, "y", "d")},
		{name: "append copies up", lowers: [][]ent{base}, op: func(t *testing.T, m string) {
			appendFile(t, m+"/d/a", " more")
		}},
		{name: "truncate", lowers: [][]ent{base}, op: func(t *testing.T, m string) {
			must(t, os.Truncate(m+"/d/sub/x", 0))
		}},
		{name: "chmod chown utimes", lowers: [][]ent{base}, op: func(t *testing.T, m string) {
			must(t, os.Chmod(m+"/d/a", 0o600))
			must(t, os.Lchown(m+"/d/b", 123, 456))
			must(t, os.Chtimes(m+"/top", t0, t0))
		}},
		{name: "setxattr", lowers: [][]ent{base}, op: func(t *testing.T, m string) {
			must(t, unix.Setxattr(m+"/d/b", "user.new", []byte("1"), 0))
			must(t, unix.Removexattr(m+"/d/a", "user.k"))
		}},
		{name: "unlink", lowers: [][]ent{base}, upper: []ent{F("u", "u"), F("d/b", "upper b")}, op: func(t *testing.T, m string) {
			must(t, os.Remove(m+"/d/a"))
			must(t, os.Remove(m+"/d/b"))
			must(t, os.Remove(m+"/u"))
			must(t, os.Remove(m+"/link"))
		}, check: wantView(nil, "d/a", "d/b", "u", "link")},
		{name: "rmdir", lowers: [][]ent{base}, op: func(t *testing.T, m string) {
			must(t, os.Remove(m+"/e"))
			if err := os.Remove(m + "/d/sub"); !errors.Is(err, syscall.ENOTEMPTY) {
				t.Errorf("rmdir of a non-empty lower dir: %v, want ENOTEMPTY", err)
			}
		}, check: wantView(nil, "e")},
		{name: "rm -rf then mkdir is opaque", lowers: [][]ent{base}, op: func(t *testing.T, m string) {
			must(t, os.RemoveAll(m+"/d"))
			must(t, os.Mkdir(m+"/d", 0o700))
			must(t, os.WriteFile(m+"/d/fresh", []byte("f"), 0o644))
		}, check: wantView(map[string]string{"d/fresh": ""}, "d/a", "d/sub")},
		{name: "create over whiteout", lowers: [][]ent{base}, op: func(t *testing.T, m string) {
			must(t, os.Remove(m+"/top"))
			must(t, os.WriteFile(m+"/top", []byte("again"), 0o600))
			must(t, os.Remove(m+"/e"))
			must(t, os.Symlink("x", m+"/e"))
		}},
		{name: "rename file in and across dirs", lowers: [][]ent{base}, op: func(t *testing.T, m string) {
			must(t, os.Rename(m+"/d/a", m+"/d/a2"))
			must(t, os.Rename(m+"/d/b", m+"/e/b"))
			must(t, os.Rename(m+"/top", m+"/d/sub/x"))
		}, check: wantView(map[string]string{"d/a2": "", "e/b": "", "d/sub/x": ""}, "d/a", "d/b", "top")},
		{name: "rename new file over lower", lowers: [][]ent{base}, op: func(t *testing.T, m string) {
			must(t, os.WriteFile(m+"/new", []byte("n"), 0o644))
			must(t, os.Rename(m+"/new", m+"/top"))
			must(t, os.Mkdir(m+"/nd", 0o755))
			must(t, syscall.Rename(m+"/nd", m+"/e"))
		}},
		{name: "mv lower dir", lowers: [][]ent{base}, upperDiffers: "kernel answers EXDEV and mv copies; nook renames a self-contained copy",
			op: func(t *testing.T, m string) {
				must(t, os.WriteFile(m+"/d/sub/new", []byte("n"), 0o644))
				mv(t, m+"/d", m+"/moved")
				mv(t, m+"/moved/sub", m+"/e/sub")
			}, check: wantView(map[string]string{"moved/a": "", "e/sub/x": "", "e/sub/new": ""}, "d", "moved/sub")},
		{name: "mv dir onto whiteout", lowers: [][]ent{base}, upperDiffers: "kernel answers EXDEV",
			op: func(t *testing.T, m string) {
				must(t, os.RemoveAll(m+"/d"))
				mv(t, m+"/e", m+"/d")
			}},
		{name: "hard link", lowers: [][]ent{base}, op: func(t *testing.T, m string) {
			must(t, os.Link(m+"/d/b", m+"/e/b2"))
			must(t, os.Link(m+"/e/b2", m+"/b3"))
			appendFile(t, m+"/b3", "+")
		}, check: func(t *testing.T, v map[string]string) {
			if v["d/b"] != v["e/b2"] || v["d/b"] != v["b3"] {
				t.Errorf("hard links differ: %q %q %q", v["d/b"], v["e/b2"], v["b3"])
			}
		}},
		{name: "special files", lowers: [][]ent{base}, op: func(t *testing.T, m string) {
			must(t, syscall.Mkfifo(m+"/d/fifo", 0o640))
			must(t, syscall.Mknod(m+"/sock", syscall.S_IFSOCK|0o600, 0))
			must(t, os.Symlink("../top", m+"/d/sl"))
		}},
		{name: "deep create copies parents", lowers: [][]ent{{D("a").Mode(0o711).Owner(7, 8).Mtime(t0), D("a/b").Mode(0o750).Owner(9, 9).Xattr("user.d", "1"), F("a/b/f", "f")}},
			op: func(t *testing.T, m string) {
				must(t, os.WriteFile(m+"/a/b/new", []byte("n"), 0o644))
			}},
		{name: "mode and owner of new entries", lowers: [][]ent{{D("g").Mode(0o2775).Owner(0, 50)}}, op: func(t *testing.T, m string) {
			must(t, os.WriteFile(m+"/g/f", nil, 0o4755))
			must(t, os.Chmod(m+"/g/f", 0o4755))
			must(t, os.Mkdir(m+"/g/sub", 0o777))
		}},
		// A path of 4,095 bytes relative to the mount's root, the most the
		// kernel passes, works whatever the length of the layers' own
		// directories: in a lower layer (copy-up of the file and its 15
		// parents, whiteout, link) and in the upper one.
		{name: "4095-byte paths in a lower", lowers: [][]ent{{F(long('l'), "lower"), F(long('u'), "gone"), F(long('k'), "kept")}},
			op: func(t *testing.T, m string) {
				inMount(t, m, func(root lpath) {
					var st syscall.Stat_t
					must(t, root.child(long('k')).lstat(&st))
					appendAt(t, root.child(long('l')), " more")
					must(t, root.child(long('l')).setxattr("user.x", []byte("1"), 0))
					createAt(t, root.child(long('n')), "new")
					must(t, root.child(long('m')).mkdir(0o755))
					must(t, root.child(long('s')).symlink("target"))
					must(t, root.child(long('n')).rename(root.child(long('r')), 0))
					must(t, root.child(long('u')).unlink())
					must(t, root.child(long('h')).link(root.child(long('k'))))
					must(t, root.child(long('k')).chmod(0o600))
				})
			}, check: wantView(map[string]string{long('l'): "", long('k'): "", long('r'): "", long('m'): "", long('s'): "", long('h'): ""},
				long('n'), long('u'))},
		{name: "4095-byte paths in the upper", lowers: [][]ent{{F("x", "x")}},
			upper: []ent{F(long('a'), "upper a"), F(long('b'), "upper b"), D(long('d'))},
			op: func(t *testing.T, m string) {
				inMount(t, m, func(root lpath) {
					must(t, root.child(long('a')).rename(root.child(long('c')), 0))
					must(t, root.child(long('c')).truncate(2))
					must(t, root.child(long('b')).unlink())
					must(t, root.child(long('d')).rmdir())
					createAt(t, root.child(long('e')), "e")
				})
			}, check: wantView(map[string]string{long('c'): "", long('e'): ""}, long('a'), long('b'), long('d'))},
		// chown of a new entry to its creator clears setuid bits: the mode
		// must be set again afterwards.
		{name: "setuid file created by another user", lowers: [][]ent{{D("w").Mode(0o777)}},
			op: func(t *testing.T, m string) { createAs(t, 1000, 1000, m+"/w/suid", 0o4755) }},
		// Made in the work directory, then renamed over a whiteout: the
		// entries still get the setgid directory's group (and setgid bit).
		{name: "new entries over whiteouts in a setgid dir", lowers: [][]ent{{D("g").Mode(0o775).Owner(0, 50), F("g/f", "f"), D("g/d"), F("g/d/x", "x")}},
			op: func(t *testing.T, m string) {
				must(t, os.Chmod(m+"/g", 0o775|os.ModeSetgid))
				must(t, os.Remove(m+"/g/f"))
				must(t, os.RemoveAll(m+"/g/d"))
				must(t, os.WriteFile(m+"/g/f", []byte("new"), 0o640))
				must(t, os.Mkdir(m+"/g/d", 0o750))
				must(t, os.Symlink("f", m+"/g/d/l"))
			}},
	}
}

// long is a path of 4,095 bytes: 15 directories and a file, each name 255
// bytes (the most a name may have), the file's made of c.
func long(c byte) string {
	var parts []string
	for i := range 15 {
		parts = append(parts, strings.Repeat(string(rune('A'+i)), 255))
	}
	return strings.Join(append(parts, strings.Repeat(string(c), 255)), "/")
}

// inMount runs f with the mount's root open, for paths relative to it:
// as long as a path may be, longer than one that names the mount too.
// The descriptor is closed before the mount goes.
func inMount(t *testing.T, m string, f func(root lpath)) {
	t.Helper()
	root, done := openRoot(t, m)
	defer done()
	f(root)
}

func appendAt(t *testing.T, p lpath, s string) {
	t.Helper()
	fd, err := p.open(unix.O_WRONLY|unix.O_APPEND, 0)
	must(t, err)
	_, err = unix.Write(fd, []byte(s))
	must(t, err)
	must(t, unix.Close(fd))
}

func createAt(t *testing.T, p lpath, s string) {
	t.Helper()
	fd, err := p.open(unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o644)
	must(t, err)
	_, err = unix.Write(fd, []byte(s))
	must(t, err)
	must(t, unix.Close(fd))
}

// createAs creates file p with open(2) mode as uid:gid: with the fsuid
// and fsgid of this thread alone set to them for the call.
func createAs(t *testing.T, uid, gid int, p string, mode uint32) {
	t.Helper()
	// The test's temporary directories are the root's, mode 0700.
	for d := filepath.Dir(filepath.Dir(p)); strings.HasPrefix(d, os.TempDir()+"/"); d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		must(t, err)
		must(t, os.Chmod(d, fi.Mode().Perm()|0o111))
	}
	runtime.LockOSThread()
	must(t, unix.Setfsgid(gid))
	must(t, unix.Setfsuid(uid))
	fd, err := syscall.Open(p, syscall.O_CREAT|syscall.O_EXCL|syscall.O_WRONLY|syscall.O_CLOEXEC, mode)
	if prev, _ := unix.SetfsuidRetUid(0); prev == uid {
		if prev, _ := unix.SetfsgidRetGid(0); prev == gid {
			runtime.UnlockOSThread() // else the thread ends with the goroutine
		}
	}
	must(t, err)
	must(t, syscall.Close(fd))
}

// wantView checks that present paths are shown and absent ones are not.
func wantView(present map[string]string, absent ...string) func(t *testing.T, v map[string]string) {
	return func(t *testing.T, v map[string]string) {
		for p := range present {
			if _, ok := v[p]; !ok {
				t.Errorf("%s missing from the view", p)
			}
		}
		for _, p := range absent {
			if _, ok := v[p]; ok {
				t.Errorf("%s should be hidden, is %q", p, v[p])
			}
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, p, s string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	must(t, err)
	_, err = f.WriteString(s)
	must(t, err)
	must(t, f.Close())
}

// mv renames like mv(1): on EXDEV it copies, then removes the source.
func mv(t *testing.T, src, dst string) {
	t.Helper()
	err := syscall.Rename(src, dst)
	if !errors.Is(err, syscall.EXDEV) {
		must(t, err)
		return
	}
	must(t, copyTreeForMv(src, dst))
	must(t, os.RemoveAll(src))
}

func copyTreeForMv(src, dst string) error {
	return filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		d := filepath.Join(dst, rel)
		st := fi.Sys().(*syscall.Stat_t)
		switch {
		case fi.IsDir():
			if err := os.Mkdir(d, fi.Mode().Perm()); err != nil {
				return err
			}
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			if err := os.Symlink(target, d); err != nil {
				return err
			}
		default:
			in, err := os.Open(p)
			if err != nil {
				return err
			}
			out, err := os.OpenFile(d, os.O_CREATE|os.O_WRONLY, fi.Mode().Perm())
			if err == nil {
				_, err = io.Copy(out, in)
				out.Close()
			}
			in.Close()
			if err != nil {
				return err
			}
		}
		if err := os.Lchown(d, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			if err := os.Chmod(d, fi.Mode()&os.ModePerm|fi.Mode()&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky)); err != nil {
				return err
			}
			names, _ := listXattrs(abs(p))
			for _, n := range names {
				v, _ := getXattr(abs(p), n, make([]byte, 256))
				_ = unix.Lsetxattr(d, n, v, 0)
			}
		}
		return nil
	})
}

// runSem applies c to a fresh layout mounted by mount and returns the view
// (with link counts), the offline view of the layers and the upper tree.
func runSem(t *testing.T, c semCase, mount func(*layout) func()) (view, offline, upper map[string]string) {
	l := newLayout(t, c.lowers...)
	buildLayer(t, l.upper, c.upper)
	unmount := mount(l)
	if c.op != nil {
		c.op(t, l.mnt)
	}
	view = withoutRoot(tree(t, l.mnt, true))
	plain := withoutRoot(tree(t, l.mnt, false))
	unmount()
	offline = merged(t, append([]string{l.upper}, l.lowers...))
	if d := diffTrees(plain, offline); len(d) > 0 {
		t.Errorf("the upper directory does not hold the changes; mount vs offline:\n%s", lines(d))
	}
	return view, offline, withoutRoot(tree(t, l.upper, false))
}

func lines(s []string) string {
	out := ""
	for _, l := range s {
		out += "  " + l + "\n"
	}
	return out
}

func TestSemantics(t *testing.T) {
	testutil.RequireRoot(t) // the fixtures' owners need (namespace) root
	for _, c := range semCases() {
		t.Run(c.name, func(t *testing.T) {
			nview, _, nupper := runSem(t, c, func(l *layout) func() {
				// AllowOther as nook mounts: cases may act as other users.
				return mountNook(t, l, Options{Xattrs: XattrsOn, AllowOther: true, Debug: os.Getenv("NOOK_DEBUG") != ""})
			})
			if c.check != nil {
				c.check(t, nview)
			}
			kview, _, kupper := runSem(t, c, func(l *layout) func() { return mountKernel(t, l) })
			if d := diffTrees(kview, nview); len(d) > 0 {
				t.Errorf("views differ, kernel overlayfs vs nook:\n%s", lines(d))
			}
			if c.upperDiffers == "" {
				if d := diffTrees(kupper, nupper); len(d) > 0 {
					t.Errorf("upper directories differ, kernel overlayfs vs nook:\n%s", lines(d))
				}
			}
		})
	}
}
