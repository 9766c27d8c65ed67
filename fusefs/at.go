package fusefs

import (
	"errors"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Paths in the layers. A file of the union is rel under each layer's
// directory; joined into one host path, the layer directory's own length
// would be taken from the PATH_MAX (4,096 bytes with its NUL) a path may
// have, and a path the kernel's overlayfs serves would fail here with
// ENAMETOOLONG. So the union holds a descriptor of each layer's directory
// and works relative to it with the *at calls: rel alone must fit, as it
// must for the caller of the mount. It also pins the layer directory: a
// component above it swapped meanwhile cannot redirect the union.
//
// Extended attributes have no *at calls before Linux 6.13: a path that
// fits goes whole, a longer one through /proc/self/fd of an O_PATH
// descriptor of the file (which names the file itself, symlinks too).

// lpath is a file in a layer: rel under the directory open as dir, whose
// path is base (for messages, and for xattrs when the whole path fits).
// An absolute rel (the work directory's entries) ignores dir.
type lpath struct {
	dir  int
	base string
	rel  string
}

// abs is a host path given whole, such as a work directory entry.
func abs(p string) lpath { return lpath{dir: unix.AT_FDCWD, rel: p} }

// name is rel as the *at calls take it.
func (p lpath) name() string {
	if p.rel == "" {
		return "."
	}
	return p.rel
}

// String is the host path, for messages.
func (p lpath) String() string {
	switch {
	case p.dir == unix.AT_FDCWD || p.base == "":
		return p.rel
	case p.rel == "":
		return p.base
	}
	return p.base + "/" + p.rel
}

// child is the entry name of directory p.
func (p lpath) child(name string) lpath {
	p.rel = childPath(p.rel, name)
	return p
}

// parent is p's directory; the layer's root is its own parent.
func (p lpath) parent() lpath {
	p.rel = parentOf(p.rel)
	return p
}

func (p lpath) lstat(st *syscall.Stat_t) error {
	// syscall.Stat_t and unix.Stat_t are both the kernel's struct stat.
	return unix.Fstatat(p.dir, p.name(), (*unix.Stat_t)(unsafe.Pointer(st)), unix.AT_SYMLINK_NOFOLLOW)
}

// stat follows a symlink at p.
func (p lpath) stat(st *syscall.Stat_t) error {
	return unix.Fstatat(p.dir, p.name(), (*unix.Stat_t)(unsafe.Pointer(st)), 0)
}

func (p lpath) open(flags int, mode uint32) (int, error) {
	for {
		fd, err := unix.Openat(p.dir, p.name(), flags|unix.O_CLOEXEC, mode)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

func (p lpath) readlink(buf []byte) (int, error) { return unix.Readlinkat(p.dir, p.name(), buf) }

func (p lpath) chmod(mode uint32) error { return unix.Fchmodat(p.dir, p.name(), mode, 0) }

func (p lpath) lchown(uid, gid int) error {
	return unix.Fchownat(p.dir, p.name(), uid, gid, unix.AT_SYMLINK_NOFOLLOW)
}

func (p lpath) utimes(ts []unix.Timespec) error {
	return unix.UtimesNanoAt(p.dir, p.name(), ts, unix.AT_SYMLINK_NOFOLLOW)
}

// truncate sets the size of the regular file at p.
func (p lpath) truncate(size int64) error {
	fd, err := p.open(unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Ftruncate(fd, size)
}

func (p lpath) mkdir(mode uint32) error { return unix.Mkdirat(p.dir, p.name(), mode) }

func (p lpath) mknod(mode uint32, dev int) error { return unix.Mknodat(p.dir, p.name(), mode, dev) }

func (p lpath) symlink(target string) error { return unix.Symlinkat(target, p.dir, p.name()) }

// link makes p a hard link of the file at from.
func (p lpath) link(from lpath) error { return unix.Linkat(from.dir, from.name(), p.dir, p.name(), 0) }

func (p lpath) unlink() error { return unix.Unlinkat(p.dir, p.name(), 0) }

func (p lpath) rmdir() error { return unix.Unlinkat(p.dir, p.name(), unix.AT_REMOVEDIR) }

// rename renames p to to with renameat2's flags.
func (p lpath) rename(to lpath, flags uint) error {
	return unix.Renameat2(p.dir, p.name(), to.dir, to.name(), flags)
}

// removeAll removes p and, for a directory, everything in it.
func (p lpath) removeAll() error {
	err := p.unlink()
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return err
	}
	if err := p.emptyDir(); err != nil {
		return err
	}
	if err := p.rmdir(); err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	return nil
}

// emptyDir removes everything inside directory p.
func (p lpath) emptyDir() error {
	ents, err := readDir(p)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := p.child(e.Name).removeAll(); err != nil {
			return err
		}
	}
	return nil
}

// xattrPath calls f with a path naming p itself for the xattr calls that
// follow no symlink (l*xattr): the whole path when it fits, else
// /proc/self/fd of an O_PATH descriptor, which needs the calls that
// follow (the magic link leads to the file, not through it); follow says
// which kind f must use.
func (p lpath) xattrPath(f func(path string, follow bool) error) error {
	if whole := p.String(); len(whole) < unix.PathMax {
		return f(whole, false)
	}
	fd, err := p.open(unix.O_PATH|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return f("/proc/self/fd/"+strconv.Itoa(fd), true)
}

func (p lpath) getxattr(name string, dest []byte) (sz int, err error) {
	err = p.xattrPath(func(path string, follow bool) error {
		if follow {
			sz, err = unix.Getxattr(path, name, dest)
		} else {
			sz, err = unix.Lgetxattr(path, name, dest)
		}
		return err
	})
	return sz, err
}

func (p lpath) listxattr(dest []byte) (sz int, err error) {
	err = p.xattrPath(func(path string, follow bool) error {
		if follow {
			sz, err = unix.Listxattr(path, dest)
		} else {
			sz, err = unix.Llistxattr(path, dest)
		}
		return err
	})
	return sz, err
}

func (p lpath) setxattr(name string, data []byte, flags int) error {
	return p.xattrPath(func(path string, follow bool) error {
		if follow {
			return unix.Setxattr(path, name, data, flags)
		}
		return unix.Lsetxattr(path, name, data, flags)
	})
}

func (p lpath) removexattr(name string) error {
	return p.xattrPath(func(path string, follow bool) error {
		if follow {
			return unix.Removexattr(path, name)
		}
		return unix.Lremovexattr(path, name)
	})
}
