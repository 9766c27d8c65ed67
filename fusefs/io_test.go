package fusefs

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"nook/internal/testutil"

	"golang.org/x/sys/unix"
)

// TestNoOpen checks that the kernel opens files and lists directories
// without asking once told so: the round trips it saves were half the
// time of reading small files.
func TestNoOpen(t *testing.T) {
	var files []ent
	for i := 0; i < 10; i++ {
		files = append(files, F(fmt.Sprintf("d%d/f%d", i%3, i), fmt.Sprint(i)))
	}
	l := newLayout(t, files)
	srv, _ := mountNookServer(t, l, Options{})
	testutil.Require(t, srv.u.noOpen() && srv.u.noOpendir(), "the kernel lacks FUSE_NO_OPEN_SUPPORT or FUSE_NO_OPENDIR_SUPPORT")
	for round := 0; round < 3; round++ {
		for i := 0; i < 10; i++ {
			b, err := os.ReadFile(fmt.Sprintf("%s/d%d/f%d", l.mnt, i%3, i))
			must(t, err)
			if string(b) != fmt.Sprint(i) {
				t.Fatalf("f%d reads %q", i, b)
			}
		}
		for d := 0; d < 3; d++ {
			if _, err := os.ReadDir(fmt.Sprintf("%s/d%d", l.mnt, d)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := srv.u.opens.Load(); n > 2 {
		t.Errorf("the kernel sent %d OPEN/OPENDIR requests for 30 opens and 9 listings, want one of each", n)
	}
}

// TestOpenFileSemantics runs sequences on descriptors that outlive their
// name or see a copy-up, on a plain directory and through the union, and
// compares what each step returned.
func TestOpenFileSemantics(t *testing.T) {
	type step func(dir string, fds map[string]int) string
	open := func(name, as string, flags int) step {
		return func(dir string, fds map[string]int) string {
			fd, err := syscall.Open(dir+"/"+name, flags|syscall.O_CLOEXEC, 0o644)
			fds[as] = fd
			return errString(err)
		}
	}
	read := func(as string, off int64) step {
		return func(_ string, fds map[string]int) string {
			b := make([]byte, 64)
			n, err := syscall.Pread(fds[as], b, off)
			if err != nil {
				return err.Error()
			}
			return string(b[:n])
		}
	}
	write := func(as, data string, off int64) step {
		return func(_ string, fds map[string]int) string {
			_, err := syscall.Pwrite(fds[as], []byte(data), off)
			return errString(err)
		}
	}
	fstat := func(as string) step {
		return func(_ string, fds map[string]int) string {
			var st syscall.Stat_t
			if err := syscall.Fstat(fds[as], &st); err != nil {
				return err.Error()
			}
			return fmt.Sprintf("size %d nlink %d mode %o", st.Size, st.Nlink, st.Mode)
		}
	}
	do := func(f func(dir string) error) step {
		return func(dir string, _ map[string]int) string { return errString(f(dir)) }
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"read after unlink of a lower file", []step{
			open("low", "a", syscall.O_RDONLY),
			do(func(d string) error { return os.Remove(d + "/low") }),
			read("a", 0), fstat("a"),
		}},
		{"write after unlink of a lower file", []step{
			open("low", "a", syscall.O_RDWR),
			do(func(d string) error { return os.Remove(d + "/low") }),
			write("a", "LOW", 0), read("a", 0), fstat("a"),
			do(func(d string) error { _, err := os.Stat(d + "/low"); return err }),
		}},
		{"upper file unlinked while open", []step{
			do(func(d string) error { return os.WriteFile(d+"/new", []byte("fresh"), 0o600) }),
			open("new", "a", syscall.O_RDWR),
			do(func(d string) error { return os.Remove(d + "/new") }),
			write("a", "++", 5), read("a", 0), fstat("a"),
		}},
		{"renamed over while open", []step{
			open("low", "a", syscall.O_RDONLY),
			do(func(d string) error { return os.WriteFile(d+"/other", []byte("other"), 0o644) }),
			do(func(d string) error { return os.Rename(d+"/other", d+"/low") }),
			read("a", 0), fstat("a"),
			open("low", "b", syscall.O_RDONLY), read("b", 0),
		}},
		{"reader sees a copy-up", []step{
			open("low", "r", syscall.O_RDONLY), read("r", 0),
			open("low", "w", syscall.O_WRONLY|syscall.O_APPEND),
			write("w", "!", 0), read("r", 0), fstat("r"),
		}},
		{"O_TMPFILE written, then linked into place", []step{
			open("", "t", syscall.O_RDWR|unix.O_TMPFILE),
			write("t", "unnamed", 0), fstat("t"),
			func(d string, fds map[string]int) string {
				return errString(unix.Linkat(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", fds["t"]), unix.AT_FDCWD, d+"/named", unix.AT_SYMLINK_FOLLOW))
			},
			fstat("t"), write("t", "!", 7),
			open("named", "n", syscall.O_RDONLY), read("n", 0), fstat("n"),
		}},
		{"O_TMPFILE never linked leaves nothing", []step{
			open("", "t", syscall.O_WRONLY|unix.O_TMPFILE), write("t", "gone", 0),
			do(func(d string) error { _, err := os.ReadDir(d); return err }),
		}},
		{"open for writing alone changes nothing", []step{
			open("low", "w", syscall.O_WRONLY), fstat("w"), read("w", 0),
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l := newLayout(t, []ent{F("low", "lower data")})
			native := t.TempDir()
			buildLayer(t, native, []ent{F("low", "lower data")})
			mountNook(t, l, Options{})
			var got [2][]string
			for i, dir := range []string{native, l.mnt} {
				fds := map[string]int{}
				for _, s := range c.steps {
					got[i] = append(got[i], s(dir, fds))
				}
				for _, fd := range fds {
					syscall.Close(fd)
				}
			}
			if strings.Join(got[0], "|") != strings.Join(got[1], "|") {
				t.Errorf("steps differ:\nnative: %q\nunion:  %q", got[0], got[1])
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return e.Error()
	}
	return "error"
}

// TestLocks checks that record locks behave as on a plain directory: they
// are the kernel's own, local to the mount, as with overlayfs.
func TestLocks(t *testing.T) {
	l := newLayout(t, []ent{F("f", "data")})
	native := t.TempDir()
	buildLayer(t, native, []ent{F("f", "data")})
	mountNook(t, l, Options{})
	run := func(dir string) string {
		f1, err := os.OpenFile(dir+"/f", os.O_RDWR, 0)
		must(t, err)
		defer f1.Close()
		f2, err := os.OpenFile(dir+"/f", os.O_RDWR, 0)
		must(t, err)
		defer f2.Close()
		var out []string
		for _, c := range []struct {
			f   *os.File
			cmd int
			typ int16
		}{
			{f1, unix.F_OFD_SETLK, unix.F_WRLCK},
			{f2, unix.F_OFD_SETLK, unix.F_RDLCK}, // conflicts: another open file
			{f1, unix.F_SETLK, unix.F_WRLCK},
			{f2, unix.F_SETLK, unix.F_RDLCK}, // same process: no conflict
		} {
			lk := unix.Flock_t{Type: c.typ}
			out = append(out, errString(unix.FcntlFlock(c.f.Fd(), c.cmd, &lk)))
		}
		out = append(out, errString(syscall.Flock(int(f1.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)))
		out = append(out, errString(syscall.Flock(int(f2.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)))
		return strings.Join(out, " ")
	}
	want, got := run(native), run(l.mnt)
	if want != got {
		t.Errorf("locks: native %s, union %s", want, got)
	}
	if !strings.HasPrefix(got, "ok resource temporarily unavailable") {
		t.Errorf("a conflicting OFD lock was granted: %s", got)
	}
}

// TestNodeSize guards the memory per file: go-fuse's Inode and our node
// fill the 144-byte allocation class; a field more costs 16 bytes a file.
func TestNodeSize(t *testing.T) {
	if sz := unsafe.Sizeof(node{}); sz > 144 {
		t.Errorf("node is %d bytes, want at most 144", sz)
	}
}

// TestReadCache checks the descriptor cache: a descriptor is shared while
// cached, closed when dropped or evicted, and a descriptor opened while
// the node moved to another layer is not kept.
func TestReadCache(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(dir+"/f", []byte("x"), 0o644))
	opened := 0
	open := func(n *node) func() (int, int32, syscall.Errno) {
		return func() (int, int32, syscall.Errno) {
			opened++
			fd, err := syscall.Open(dir+"/f", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			return fd, n.top(), 0
		}
	}
	valid := func(fd int) bool { _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); return err == nil }
	var c readCache
	a := &node{}
	fd1, done1, _ := c.get(a, open(a))
	fd2, done2, _ := c.get(a, open(a))
	if fd1 != fd2 || opened != 1 {
		t.Fatalf("second get opened again: fds %d %d, %d opens", fd1, fd2, opened)
	}
	done1()
	c.drop(a) // still used by the second get: closed on its release
	if !valid(fd2) {
		t.Fatal("dropped descriptor closed while in use")
	}
	done2()
	if valid(fd2) {
		t.Error("dropped descriptor not closed after its last use")
	}
	nodes := make([]*node, readCacheSize+1)
	var fds []int
	for i := range nodes {
		nodes[i] = &node{}
		fd, done, _ := c.get(nodes[i], open(nodes[i]))
		done()
		fds = append(fds, fd)
	}
	if valid(fds[0]) || !valid(fds[len(fds)-1]) {
		t.Errorf("eviction: oldest open %v, newest open %v", valid(fds[0]), valid(fds[len(fds)-1]))
	}
	moved := &node{}
	fd, done, _ := c.get(moved, func() (int, int32, syscall.Errno) {
		fd, _, errno := open(moved)()
		moved.layer.Store(1) // a copy-up happened meanwhile
		return fd, 0, errno
	})
	done()
	if valid(fd) {
		t.Error("a descriptor of the old layer was cached")
	}
	c.closeAll()
	if valid(fds[len(fds)-1]) {
		t.Error("closeAll left a descriptor open")
	}
}
