package fusefs

import (
	"errors"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"nook/internal/overlay"
)

// ent describes one entry of a layer fixture.
type ent struct {
	path   string
	kind   byte // 'f' file, 'd' dir, 'l' symlink, 'w' whiteout, 'h' hard link, 'p' fifo, 's' sparse file
	data   string
	mode   os.FileMode
	uid    int
	gid    int
	opaque bool
	xattrs map[string]string
	mtime  time.Time
}

// Fixture constructors: F file, D dir, O opaque dir, L symlink, W whiteout,
// H hard link to data, P fifo, S sparse file of size len(data) MiB holes.
func F(p, data string) ent   { return ent{path: p, kind: 'f', data: data, mode: 0o644} }
func D(p string) ent         { return ent{path: p, kind: 'd', mode: 0o755} }
func O(p string) ent         { return ent{path: p, kind: 'd', mode: 0o755, opaque: true} }
func L(p, target string) ent { return ent{path: p, kind: 'l', data: target} }
func W(p string) ent         { return ent{path: p, kind: 'w'} }
func H(p, target string) ent { return ent{path: p, kind: 'h', data: target} }
func P(p string) ent         { return ent{path: p, kind: 'p', mode: 0o644} }

func (e ent) Mode(m os.FileMode) ent { e.mode = m; return e }
func (e ent) Owner(uid, gid int) ent { e.uid, e.gid = uid, gid; return e }
func (e ent) Xattr(k, v string) ent {
	m := map[string]string{k: v}
	for k2, v2 := range e.xattrs {
		m[k2] = v2
	}
	e.xattrs = m
	return e
}
func (e ent) Mtime(t time.Time) ent { e.mtime = t; return e }

// openRoot opens dir for the lpath helpers; the descriptor is closed when
// the test ends, or by the returned function.
func openRoot(t testing.TB, dir string) (lpath, func()) {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	done := func() { once.Do(func() { unix.Close(fd) }) }
	t.Cleanup(done)
	return lpath{dir: fd, base: dir}, done
}

// mkdirAll makes p's missing directories, 0755, one component at a time:
// p may be longer than a host path can be.
func mkdirAll(p lpath) error {
	rel := ""
	for _, c := range strings.Split(p.rel, "/") {
		rel = childPath(rel, c)
		if err := (lpath{dir: p.dir, base: p.base, rel: rel}).mkdir(0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return err
		}
	}
	return nil
}

// buildLayer creates dir and the entries in it, in order, parents first.
// Missing parents are made 0755. Entries are made relative to dir, so
// their paths may be as long as the mount's own can be.
func buildLayer(t testing.TB, dir string, ents []ent) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	root, done := openRoot(t, dir)
	defer done()
	for _, e := range ents {
		p := root.child(e.path)
		if parent := p.parent(); parent.rel != "" {
			if err := mkdirAll(parent); err != nil {
				t.Fatal(err)
			}
		}
		var err error
		switch e.kind {
		case 'f', 's':
			var fd int
			if fd, err = p.open(unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC, uint32(e.mode.Perm())); err == nil {
				off := int64(0)
				if e.kind == 's' {
					off = 4 << 20
				}
				_, err = unix.Pwrite(fd, []byte(e.data), off)
				unix.Close(fd)
			}
		case 'd':
			if err = p.mkdir(uint32(e.mode.Perm())); errors.Is(err, unix.EEXIST) {
				err = nil
			}
			if err == nil && e.opaque {
				err = p.setxattr(overlay.OpaqueXattr, []byte(overlay.OpaqueValue), 0)
			}
		case 'l':
			err = p.symlink(e.data)
		case 'w':
			err = p.mknod(syscall.S_IFCHR, 0)
		case 'h':
			err = p.link(root.child(e.data))
		case 'p':
			err = p.mknod(syscall.S_IFIFO|uint32(e.mode.Perm()), 0)
		}
		if err != nil {
			t.Fatalf("building %s: %v", p, err)
		}
		if e.kind == 'h' || e.kind == 'w' {
			continue
		}
		if e.kind != 'l' {
			if err := p.chmod(fileMode(e.mode)); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.lchown(e.uid, e.gid); err != nil && os.Geteuid() == 0 {
			t.Fatal(err)
		}
		for k, v := range e.xattrs {
			if err := p.setxattr(k, []byte(v), 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Times last: creating children changes a directory's mtime.
	for _, e := range ents {
		if !e.mtime.IsZero() {
			ts := []unix.Timespec{unix.NsecToTimespec(e.mtime.UnixNano()), unix.NsecToTimespec(e.mtime.UnixNano())}
			if err := root.child(e.path).utimes(ts); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// fileMode is m as chmod(2) takes it.
func fileMode(m os.FileMode) uint32 {
	mode := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		mode |= syscall.S_ISUID
	}
	if m&os.ModeSetgid != 0 {
		mode |= syscall.S_ISGID
	}
	if m&os.ModeSticky != 0 {
		mode |= syscall.S_ISVTX
	}
	return mode
}
