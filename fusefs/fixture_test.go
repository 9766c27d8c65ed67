package fusefs

import (
	"os"
	"path/filepath"
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

// buildLayer creates dir and the entries in it, in order, parents first.
// Missing parents are made 0755.
func buildLayer(t testing.TB, dir string, ents []ent) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch e.kind {
		case 'f':
			err = os.WriteFile(p, []byte(e.data), e.mode)
		case 's':
			var f *os.File
			if f, err = os.Create(p); err == nil {
				_, err = f.WriteAt([]byte(e.data), 4<<20)
				f.Close()
			}
		case 'd':
			if err = os.Mkdir(p, e.mode); os.IsExist(err) {
				err = nil
			}
			if err == nil && e.opaque {
				err = unix.Lsetxattr(p, overlay.OpaqueXattr, []byte(overlay.OpaqueValue), 0)
			}
		case 'l':
			err = os.Symlink(e.data, p)
		case 'w':
			err = syscall.Mknod(p, syscall.S_IFCHR, 0)
		case 'h':
			err = os.Link(filepath.Join(dir, e.data), p)
		case 'p':
			err = syscall.Mkfifo(p, uint32(e.mode))
		}
		if err != nil {
			t.Fatalf("building %s: %v", p, err)
		}
		if e.kind == 'h' || e.kind == 'w' {
			continue
		}
		if e.kind != 'l' {
			if err := os.Chmod(p, e.mode); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Lchown(p, e.uid, e.gid); err != nil && os.Geteuid() == 0 {
			t.Fatal(err)
		}
		for k, v := range e.xattrs {
			if err := unix.Lsetxattr(p, k, []byte(v), 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Times last: creating children changes a directory's mtime.
	for _, e := range ents {
		if !e.mtime.IsZero() {
			ts := []unix.Timespec{unix.NsecToTimespec(e.mtime.UnixNano()), unix.NsecToTimespec(e.mtime.UnixNano())}
			p := filepath.Join(dir, e.path)
			if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				t.Fatal(err)
			}
		}
	}
}
