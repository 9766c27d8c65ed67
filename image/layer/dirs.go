package layer

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// dirs hands out descriptors of directories under the root, resolved one
// component at a time with O_NOFOLLOW so a symlink anywhere on the way is
// an error rather than a detour. It keeps the last directory open: tar
// entries come grouped by directory, so most lookups cost no system call,
// and at most two descriptors are open however deep the tree.
type dirs struct {
	root    int
	cur     int    // -1 when nothing is cached
	curPath string // cleaned path of cur relative to root
}

const (
	openDir  = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	implicit = 0o755 // mode of a parent directory the tar never names
)

func openDirs(dir string) (*dirs, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening layer directory %s: %w", dir, err)
	}
	return &dirs{root: fd, cur: -1}, nil
}

func (d *dirs) close() {
	d.forget()
	unix.Close(d.root)
}

func (d *dirs) forget() {
	if d.cur >= 0 {
		unix.Close(d.cur)
	}
	d.cur, d.curPath = -1, ""
}

// open returns a descriptor of the directory rel ("." for the root), owned
// by d and valid until the next call. With create, missing components are
// made with mode 0755, as tar does for parents it was not given.
func (d *dirs) open(rel string, create bool) (int, error) {
	if rel == "." {
		return d.root, nil
	}
	if d.cur >= 0 && rel == d.curPath {
		return d.cur, nil
	}
	from, fromPath, rest := d.root, ".", rel
	if d.cur >= 0 && strings.HasPrefix(rel, d.curPath+"/") {
		from, fromPath, rest = d.cur, d.curPath, rel[len(d.curPath)+1:]
	}
	fd, err := walk(from, fromPath, rest, create)
	if err != nil {
		return -1, err
	}
	d.forget()
	d.cur, d.curPath = fd, rel
	return fd, nil
}

// invalidate drops the cached descriptor if it is rel or lies below it:
// rel is about to be removed, and writing into an unlinked directory
// would lose entries silently.
func (d *dirs) invalidate(rel string) {
	if d.cur >= 0 && (d.curPath == rel || strings.HasPrefix(d.curPath, rel+"/")) {
		d.forget()
	}
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
