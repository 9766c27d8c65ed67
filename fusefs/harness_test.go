package fusefs

import (
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"nook/internal/testutil"

	"golang.org/x/sys/unix"
)

func needFuse(t testing.TB) {
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err == nil {
		f.Close()
	}
	testutil.Require(t, err == nil, "/dev/fuse is not usable")
}

// layout is one set of union directories.
type layout struct {
	lowers           []string // top first
	upper, work, mnt string
}

// newLayout builds the lower layers (top first) in a temporary directory.
func newLayout(t testing.TB, lowers ...[]ent) *layout {
	t.Helper()
	root := t.TempDir()
	// The test runs as another user inside the mount: let it through.
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	l := &layout{upper: root + "/upper", work: root + "/work", mnt: root + "/mnt"}
	for i, ents := range lowers {
		d := fmt.Sprintf("%s/l%d", root, i)
		buildLayer(t, d, ents)
		l.lowers = append(l.lowers, d)
	}
	for _, d := range []string{l.upper, l.work, l.mnt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// watchdog aborts the FUSE connection of mnt if the test outlives d, so a
// hung server fails the test instead of leaving processes in state D.
func watchdog(t testing.TB, mnt string, d time.Duration) {
	var st syscall.Stat_t
	if err := syscall.Stat(mnt, &st); err != nil {
		return
	}
	minor := unix.Minor(st.Dev)
	timer := time.AfterFunc(d, func() {
		_ = syscall.Mount("fusectl", "/sys/fs/fuse/connections", "fusectl", 0, "")
		_ = os.WriteFile(fmt.Sprintf("/sys/fs/fuse/connections/%d/abort", minor), []byte("1"), 0)
		_ = syscall.Unmount(mnt, syscall.MNT_DETACH)
	})
	t.Cleanup(func() { timer.Stop() })
}

// mountNook mounts the layout with our server; the returned function
// unmounts it (once; cleanup does it otherwise).
func mountNook(t testing.TB, l *layout, opts Options) func() {
	t.Helper()
	_, unmount := mountNookServer(t, l, opts)
	return unmount
}

// mountNookServer is mountNook, also returning the server.
func mountNookServer(t testing.TB, l *layout, opts Options) (*Server, func()) {
	t.Helper()
	needFuse(t)
	if opts.Logger == nil {
		level := slog.LevelWarn
		if os.Getenv("NOOK_DEBUG") != "" {
			level = slog.LevelDebug
		}
		opts.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
	}
	srv, err := Mount(l.lowers, l.upper, l.work, l.mnt, opts)
	if err != nil {
		t.Fatalf("mounting: %v", err)
	}
	watchdog(t, l.mnt, 3*time.Minute)
	var once sync.Once
	unmount := func() {
		once.Do(func() {
			if err := srv.Unmount(); err != nil {
				t.Errorf("unmounting: %v", err)
				_ = syscall.Unmount(l.mnt, syscall.MNT_DETACH)
			}
			srv.Wait()
		})
	}
	t.Cleanup(unmount)
	return srv, unmount
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// mountKernel mounts the layout with kernel overlayfs as the reference.
func mountKernel(t testing.TB, l *layout) func() {
	t.Helper()
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s,userxattr", strings.Join(l.lowers, ":"), l.upper, l.work)
	err := syscall.Mount("overlay", l.mnt, "overlay", 0, opts)
	testutil.Require(t, err == nil, fmt.Sprintf("kernel overlayfs mount refused: %v", err))
	var once sync.Once
	unmount := func() {
		once.Do(func() {
			if err := syscall.Unmount(l.mnt, 0); err != nil {
				t.Errorf("unmounting overlay: %v", err)
				_ = syscall.Unmount(l.mnt, syscall.MNT_DETACH)
			}
		})
	}
	t.Cleanup(unmount)
	return unmount
}

// tree describes every entry under root: path -> type, mode, owner, size,
// content digest or link target, user xattrs; whiteouts and opaque markers
// are shown as such (they only appear when root is a layer directory). It
// walks relative to root, so paths may be as long as a mount's can be.
func tree(t testing.TB, root string, links bool) map[string]string {
	t.Helper()
	top, done := openRoot(t, root)
	defer done()
	out := map[string]string{}
	var walk func(p lpath)
	walk = func(p lpath) {
		var st syscall.Stat_t
		if err := p.lstat(&st); err != nil {
			t.Fatalf("walking %s: %v", p, err)
		}
		out[p.name()] = describe(t, p, &st, links)
		if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
			return
		}
		ents, err := readDir(p)
		if err != nil {
			t.Fatalf("walking %s: %v", p, err)
		}
		for _, e := range ents {
			walk(p.child(e.Name))
		}
	}
	walk(top)
	return out
}

func describe(t testing.TB, p lpath, st *syscall.Stat_t, links bool) string {
	var b strings.Builder
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		fmt.Fprintf(&b, "dir")
		if isOpaque(p) {
			b.WriteString(" opaque")
		}
	case syscall.S_IFREG:
		data, err := readAll(p)
		if err != nil {
			t.Fatalf("reading %s: %v", p, err)
		}
		fmt.Fprintf(&b, "file %x", sha256.Sum256(data))
		if links {
			fmt.Fprintf(&b, " nlink=%d", st.Nlink)
		}
	case syscall.S_IFLNK:
		target, _ := readlink(p)
		fmt.Fprintf(&b, "symlink %s", target)
	case syscall.S_IFCHR:
		if st.Rdev == 0 {
			return "whiteout"
		}
		b.WriteString("chr")
	case syscall.S_IFIFO:
		b.WriteString("fifo")
	case syscall.S_IFSOCK:
		b.WriteString("sock")
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFLNK {
		fmt.Fprintf(&b, " %04o", st.Mode&0o7777)
	}
	fmt.Fprintf(&b, " %d:%d", st.Uid, st.Gid)
	if st.Mode&syscall.S_IFMT != syscall.S_IFLNK {
		names, _ := listXattrs(p)
		sort.Strings(names)
		for _, n := range names {
			if strings.HasPrefix(n, "user.overlay.") {
				continue
			}
			v, _ := getXattr(p, n, make([]byte, 256))
			fmt.Fprintf(&b, " %s=%q", n, v)
		}
	}
	return b.String()
}

// readAll reads the regular file p.
func readAll(p lpath) ([]byte, error) {
	fd, err := p.open(unix.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), p.String())
	defer f.Close()
	return io.ReadAll(f)
}

// merged computes offline what a union of the layer directories (top
// first) shows, as an export would read it: the upper directory must hold
// every change, no mount involved.
func merged(t testing.TB, layers []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	var roots []lpath
	for _, l := range layers {
		r, done := openRoot(t, l)
		defer done()
		roots = append(roots, r)
	}
	var walk func(rel string, dirs []int)
	walk = func(rel string, dirs []int) {
		seen := map[string]bool{}
		for _, d := range dirs {
			ents, err := readDir(roots[d].child(rel))
			if err != nil {
				continue
			}
			for _, e := range ents {
				if seen[e.Name] {
					continue
				}
				seen[e.Name] = true
				crel := childPath(rel, e.Name)
				var st syscall.Stat_t
				p := roots[d].child(crel)
				if err := p.lstat(&st); err != nil {
					t.Fatal(err)
				}
				if isWhiteout(&st) {
					continue
				}
				out[crel] = strings.Replace(describe(t, p, &st, false), " opaque", "", 1)
				if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
					continue
				}
				// The directory merges with the ones below until one is
				// opaque or a non-directory/whiteout stops it.
				var sub []int
				for d2 := d; d2 < len(roots); d2++ {
					var st2 syscall.Stat_t
					p2 := roots[d2].child(crel)
					if p2.lstat(&st2) != nil {
						continue
					}
					if st2.Mode&syscall.S_IFMT != syscall.S_IFDIR {
						break
					}
					sub = append(sub, d2)
					if isOpaque(p2) {
						break
					}
				}
				walk(crel, sub)
			}
		}
	}
	all := make([]int, len(roots))
	for i := range roots {
		all[i] = i
	}
	walk("", all)
	return out
}

// diffTrees reports the differences between two tree descriptions.
func diffTrees(a, b map[string]string) []string {
	var diffs []string
	for k, v := range a {
		if b[k] != v {
			diffs = append(diffs, fmt.Sprintf("%s: %q vs %q", k, v, b[k]))
		}
	}
	for k, v := range b {
		if _, ok := a[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: missing vs %q", k, v))
		}
	}
	sort.Strings(diffs)
	return diffs
}

// withoutRoot drops the root entry, whose mode differs between a mount and
// an offline merge.
func withoutRoot(m map[string]string) map[string]string {
	delete(m, ".")
	return m
}
