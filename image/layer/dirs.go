package layer

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// dirs hands out descriptors of directories under the root, resolved one
// component at a time with O_NOFOLLOW so a symlink anywhere on the way is
// an error rather than a detour. It keeps the chain of directories last
// asked for open: tar entries come depth first, grouped by directory, so
// most lookups cost nothing and going back up costs no system call.
type dirs struct {
	root    int
	curPath string   // the path last opened
	names   []string // components of the held chain
	fds     []int    // fds[i] is the directory names[:i+1]
	tail    int      // beyond maxHeld levels: the one deep descriptor, or -1
}

const (
	openDir  = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	implicit = 0o755 // mode of a parent directory the tar never names
	// maxHeld bounds the descriptors held however deep a hostile tar nests.
	maxHeld = 64
)

func (d *dirs) close() {
	d.truncate(0)
	unix.Close(d.root)
}

// truncate keeps the first n levels of the chain and drops the tail.
func (d *dirs) truncate(n int) {
	for _, fd := range d.fds[n:] {
		unix.Close(fd)
	}
	d.fds, d.names = d.fds[:n], d.names[:n]
	if d.tail >= 0 {
		unix.Close(d.tail)
		d.tail = -1
	}
	d.curPath = ""
}

// open returns a descriptor of the directory rel ("." for the root), owned
// by d and valid until the next call. With create, missing components are
// made with mode 0755, as tar does for parents it was not given.
func (d *dirs) open(rel string, create bool) (int, error) {
	if rel == "." {
		return d.root, nil
	}
	if rel == d.curPath {
		return d.current(), nil
	}
	comps := strings.Split(rel, "/")
	k := 0
	for k < len(d.names) && k < len(comps) && d.names[k] == comps[k] {
		k++
	}
	d.truncate(k)
	parent := d.root
	if k > 0 {
		parent = d.fds[k-1]
	}
	for i := k; i < len(comps); i++ {
		fd, err := openComponent(parent, comps[i], create)
		if i > maxHeld {
			unix.Close(parent) // a transient deep level
		}
		if err != nil {
			return -1, describeWalkError(strings.Join(comps[:i+1], "/"), err)
		}
		if i < maxHeld {
			d.fds, d.names = append(d.fds, fd), append(d.names, comps[i])
		}
		parent = fd
	}
	if len(comps) > maxHeld {
		d.tail = parent
	}
	d.curPath = rel
	return parent, nil
}

func (d *dirs) current() int {
	if d.tail >= 0 {
		return d.tail
	}
	return d.fds[len(d.fds)-1]
}

// invalidate drops what is held of rel and below: rel is about to be
// removed, and writing into an unlinked directory would lose entries
// silently. rel's parent, which the caller is using, stays open. (Every
// removal today follows an open of rel's parent, which already dropped the
// deeper levels; this keeps that true if callers change.)
func (d *dirs) invalidate(rel string) {
	comps := strings.Split(rel, "/")
	if len(comps) > len(d.names) {
		if d.tail >= 0 && (d.curPath == rel || strings.HasPrefix(d.curPath, rel+"/")) {
			unix.Close(d.tail)
			d.tail, d.curPath = -1, ""
		}
		return
	}
	for i, c := range comps {
		if d.names[i] != c {
			return
		}
	}
	d.truncate(len(comps) - 1)
}

// walk opens rest below the directory from (whose path is fromPath) and
// returns a new descriptor the caller closes. from itself stays open.
func walk(from int, fromPath, rest string, create bool) (int, error) {
	fd, at := from, fromPath
	for comp := range strings.SplitSeq(rest, "/") {
		next, err := openComponent(fd, comp, create)
		if fd != from {
			unix.Close(fd)
		}
		at = joinRel(at, comp)
		if err != nil {
			return -1, describeWalkError(at, err)
		}
		fd = next
	}
	return fd, nil
}

func openComponent(parent int, comp string, create bool) (int, error) {
	fd, err := unix.Openat(parent, comp, openDir, 0)
	if err == unix.ENOENT && create {
		if err := unix.Mkdirat(parent, comp, implicit); err != nil && err != unix.EEXIST {
			return -1, err
		}
		fd, err = unix.Openat(parent, comp, openDir, 0)
	}
	if err == unix.ELOOP || err == unix.ENOTDIR {
		var st unix.Stat_t
		if unix.Fstatat(parent, comp, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return -1, errSymlinkParent
		}
		return -1, errNotDirParent
	}
	return fd, err
}

var (
	errSymlinkParent = errors.New("is a symlink")
	errNotDirParent  = errors.New("is not a directory")
)

func describeWalkError(at string, err error) error {
	switch err {
	case errSymlinkParent:
		return fmt.Errorf("%w: path goes through symlink %q", ErrUnsafe, at)
	case errNotDirParent:
		return fmt.Errorf("%w: parent %q is not a directory", ErrCorrupt, at)
	}
	return fmt.Errorf("opening %q: %w", at, err)
}

func joinRel(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}

// removeAllAt removes name in parent and, if it is a directory, everything
// below it, never following a symlink.
func removeAllAt(parent int, name string) error {
	err := unix.Unlinkat(parent, name, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR {
		return err
	}
	fd, err := unix.Openat(parent, name, openDir, 0)
	if err != nil {
		return err
	}
	names, err := readNames(fd)
	if err == nil {
		for _, n := range names {
			if err = removeAllAt(fd, n); err != nil {
				break
			}
		}
	}
	unix.Close(fd)
	if err != nil {
		return err
	}
	return unix.Unlinkat(parent, name, unix.AT_REMOVEDIR)
}

// readNames lists a directory by descriptor, leaving fd open and usable.
func readNames(fd int) ([]string, error) {
	var names []string
	buf := make([]byte, 32<<10)
	if _, err := unix.Seek(fd, 0, 0); err != nil {
		return nil, err
	}
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}
