package fusefs

import (
	"context"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// File I/O without handles. Opening a file costs the kernel an OPEN and a
// RELEASE round trip, which doubled the time to read small files. So Open
// answers ENOSYS once: the kernel (FUSE_NO_OPEN_SUPPORT) then opens files
// without asking, keeps their page cache (FOPEN_KEEP_CACHE is its default
// then) and sends READ, WRITE, FSYNC... with no handle. Each such request
// opens the node's top copy by path, copying it up first for a change, so
// a reader sees a copy-up at once, as with overlayfs. Only Create and
// Tmpfile still make a handle (the kernel always gets one from them).
//
// A file that is open but unlinked has no path: when a name goes, the node
// keeps a descriptor of its data (an orphan) until the kernel forgets it,
// which it does once the last descriptor on it is closed.
//
// Locks stay in the kernel (no EnableLocks): a lock needs a descriptor that
// lives as long as the open file, and the kernel's own locks are exactly
// overlayfs's, local to the mount.

// file is an open handle made by Create or Tmpfile (or by Open on kernels
// without no-open support).
type file struct {
	fd    int
	upper bool // opened in the upper layer, so it sees every write
}

var _ = (gofs.FileReleaser)((*file)(nil))

func (f *file) Release(ctx context.Context) syscall.Errno {
	return gofs.ToErrno(syscall.Close(f.fd))
}

// Orphan descriptors are stored as fd<<2 | orphanLower | orphanWritable,
// plus one, so that zero means none.
const (
	orphanWritable = 1
	orphanLower    = 2
)

// noOpen reports whether the kernel opens files without asking once told
// so (FUSE_NO_OPEN_SUPPORT, Linux 4.20).
func (u *union) noOpen() bool {
	return u.srv != nil && u.srv.KernelSettings().Flags64()&fuse.CAP_NO_OPEN_SUPPORT != 0
}

// ioFd returns a descriptor for I/O on n: the handle's, a copy of the
// orphan's, or the top copy opened by path (kept in u.reads for reading),
// copied up first for a write. done releases it.
func (n *node) ioFd(f gofs.FileHandle, write bool) (fd int, done func(), errno syscall.Errno) {
	if fh, ok := f.(*file); ok {
		return fh.fd, func() {}, 0
	}
	u := n.un()
	if write && !u.writable {
		return -1, nil, syscall.EROFS
	}
	for {
		u.mu.RLock()
		fd, errno, ok := n.openLocked(write)
		u.mu.RUnlock()
		if !ok {
			// A write needs the data in the upper layer (or, for an
			// orphan, in a writable copy) first.
			u.mu.Lock()
			if n.orphan.Load() != 0 {
				errno = n.copyUpOrphan()
			} else {
				errno = n.copyUpLocked()
			}
			u.mu.Unlock()
			if errno != 0 {
				return -1, nil, errno
			}
			continue
		}
		if errno != 0 {
			return -1, nil, errno
		}
		if fd >= 0 {
			return fd, func() { syscall.Close(fd) }, 0
		}
		if write {
			return u.writes.get(n, func() (int, int32, syscall.Errno) {
				u.mu.RLock()
				defer u.mu.RUnlock()
				layer, p := n.top(), n.realPath()
				fd, err := p.open(syscall.O_WRONLY|syscall.O_NOFOLLOW, 0)
				if err != nil {
					return -1, 0, u.hostErr("open", p, err)
				}
				return fd, layer, 0
			})
		}
		return u.reads.get(n, func() (int, int32, syscall.Errno) {
			u.mu.RLock()
			defer u.mu.RUnlock()
			layer, p := n.top(), n.realPath()
			fd, err := p.open(syscall.O_RDONLY|syscall.O_NOFOLLOW, 0)
			if err != nil {
				return -1, 0, u.hostErr("open", p, err)
			}
			return fd, layer, 0
		})
	}
}

// openLocked opens n's data for ioFd, with u.mu held: a copy of the
// orphan descriptor; fd -1 for a read, or a write to the upper copy, by
// path (ioFd's caches open those). ok is false when a write must copy the
// data up first.
func (n *node) openLocked(write bool) (fd int, errno syscall.Errno, ok bool) {
	u := n.un()
	if o := n.orphan.Load(); o != 0 {
		if write && (o-1)&orphanWritable == 0 {
			return -1, 0, false
		}
		fd, err := unix.FcntlInt(uintptr((o-1)>>2), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return -1, u.hostErr("dup", "(unlinked file)", err), true
		}
		return fd, 0, true
	}
	if !write {
		return -1, 0, true
	}
	if !n.inUpper() {
		return -1, 0, false
	}
	return -1, 0, true // the upper copy, through u.writes
}

// copyUpOrphan replaces a read-only orphan by a writable unnamed copy;
// u.mu is held exclusively.
func (n *node) copyUpOrphan() syscall.Errno {
	o := n.orphan.Load()
	if o == 0 || (o-1)&orphanWritable != 0 {
		return 0
	}
	u, src := n.un(), int((o-1)>>2)
	var st syscall.Stat_t
	if err := syscall.Fstat(src, &st); err != nil {
		return u.hostErr("copy-up stat", "(unlinked file)", err)
	}
	dst, err := unix.Open(u.work, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return u.hostErr("copying up", u.work, err)
	}
	if err := copyFd(src, dst, st.Size); err != nil {
		syscall.Close(dst)
		return u.hostErr("copying up", "(unlinked file)", err)
	}
	_ = syscall.Fchown(dst, int(st.Uid), int(st.Gid))
	_ = syscall.Fchmod(dst, st.Mode&0o7777)
	n.orphan.Store(int32(dst)<<2 | orphanWritable + 1)
	syscall.Close(src)
	return 0
}

// copyFd copies size bytes from src to dst, from their starts.
func copyFd(src, dst int, size int64) error {
	var roff, woff int64
	for roff < size {
		c, err := unix.CopyFileRange(src, &roff, dst, &woff, int(min(size-roff, 1<<30)), 0)
		if err == syscall.EXDEV || err == syscall.ENOSYS || err == syscall.EINVAL || err == syscall.EOPNOTSUPP {
			return copyFdSlowly(src, dst, roff, size)
		}
		if err != nil {
			return err
		}
		if c == 0 {
			break
		}
	}
	return nil
}

// copyFdSlowly is copyFd through a buffer, from offset off on.
func copyFdSlowly(src, dst int, off, size int64) error {
	buf := make([]byte, 128<<10)
	for off < size {
		n, err := syscall.Pread(src, buf, off)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if _, err := syscall.Pwrite(dst, buf[:n], off); err != nil {
			return err
		}
		off += int64(n)
	}
	return nil
}

// orphanChild gives the node of the regular file name, about to lose that
// name (l is where it lives), a descriptor of its data, for whoever has it
// open. u.mu is held exclusively.
func (n *node) orphanChild(name string, l *loc) {
	ci := n.GetChild(name)
	if ci == nil || l.st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return // the kernel has no inode for it, so nobody has it open
	}
	c, ok := ci.Operations().(*node)
	if !ok || c.orphan.Load() != 0 {
		return
	}
	u := n.un()
	p := u.layerPath(int(l.layer), childPath(n.path(), name))
	flags, bits := syscall.O_RDONLY, int32(0)
	if l.layer == 0 && u.writable {
		flags, bits = syscall.O_RDWR, orphanWritable
	} else {
		bits = orphanLower
	}
	// O_NONBLOCK: never wait for a lease to break with u.mu held.
	fd, err := p.open(flags|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil && bits == orphanWritable {
		bits = 0
		fd, err = p.open(syscall.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	}
	if err != nil {
		u.log.Debug("cannot keep the data of an unlinked file", "path", p, "err", err)
		return
	}
	c.orphan.Store(int32(fd)<<2 | bits + 1)
}

var _ = (gofs.NodeOnForgetter)((*node)(nil))

// OnForget closes the orphan descriptor: the kernel forgets an unlinked
// inode once nothing has it open.
func (n *node) OnForget() {
	n.un().reads.drop(n)
	n.un().writes.drop(n)
	if o := n.orphan.Swap(0); o != 0 {
		syscall.Close(int((o - 1) >> 2))
	}
}

var _ = (gofs.NodeReader)((*node)(nil))

func (n *node) Read(ctx context.Context, f gofs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if fh, ok := f.(*file); ok {
		// The handle outlives the reply: let the kernel splice from it.
		return fuse.ReadResultFd(uintptr(fh.fd), off, len(dest)), 0
	}
	fd, done, errno := n.ioFd(f, false)
	if errno != 0 {
		return nil, errno
	}
	return &spliceRead{fd: fd, off: off, size: len(dest), done: done}, 0
}

// spliceRead lets go-fuse splice a READ reply from a descriptor that ioFd
// gave, released once the reply is sent (go-fuse calls Done on every
// path).
type spliceRead struct {
	fd   int
	off  int64
	size int
	done func()
}

func (r *spliceRead) Seekable() (uintptr, int64, int) { return uintptr(r.fd), r.off, r.size }

func (r *spliceRead) Size() int { return r.size }

func (r *spliceRead) Done() { r.done() }

// Bytes reads the data when splicing is not possible.
func (r *spliceRead) Bytes(buf []byte) ([]byte, fuse.Status) {
	n, err := syscall.Pread(r.fd, buf[:min(len(buf), r.size)], r.off)
	if err != nil {
		return nil, fuse.ToStatus(err)
	}
	return buf[:n], fuse.OK
}

var _ = (gofs.NodeWritever)((*node)(nil))

func (n *node) Writev(ctx context.Context, f gofs.FileHandle, data [][]byte, off int64) (uint32, syscall.Errno) {
	fd, done, errno := n.ioFd(f, true)
	if errno != 0 {
		return 0, errno
	}
	defer done()
	sz, err := unix.Pwritev(fd, data, off)
	if err != nil {
		return uint32(max(sz, 0)), n.un().hostErr("write", n.path(), err)
	}
	return uint32(sz), 0
}

var _ = (gofs.NodeFsyncer)((*node)(nil))

// Fsync syncs the file's data through any descriptor of it: fsync(2)
// covers the inode, not the descriptor.
func (n *node) Fsync(ctx context.Context, f gofs.FileHandle, flags uint32) syscall.Errno {
	fd, done, errno := n.ioFd(f, false)
	if errno != 0 {
		return errno
	}
	defer done()
	sync := syscall.Fsync
	if flags&1 != 0 { // FUSE_FSYNC_FDATASYNC
		sync = syscall.Fdatasync
	}
	if err := sync(fd); err != nil {
		return n.un().hostErr("fsync", n.path(), err)
	}
	return 0
}

var _ = (gofs.NodeAllocater)((*node)(nil))

func (n *node) Allocate(ctx context.Context, f gofs.FileHandle, off, size uint64, mode uint32) syscall.Errno {
	fd, done, errno := n.ioFd(f, true)
	if errno != 0 {
		return errno
	}
	defer done()
	if err := unix.Fallocate(fd, mode, int64(off), int64(size)); err != nil {
		return n.un().hostErr("fallocate", n.path(), err)
	}
	return 0
}

var _ = (gofs.NodeLseeker)((*node)(nil))

// Lseek answers SEEK_DATA and SEEK_HOLE from the layer file, so holes
// show through the mount.
func (n *node) Lseek(ctx context.Context, f gofs.FileHandle, off uint64, whence uint32) (uint64, syscall.Errno) {
	fd, done, errno := n.ioFd(f, false)
	if errno != 0 {
		return 0, errno
	}
	defer done()
	res, err := unix.Seek(fd, int64(off), int(whence))
	if err != nil {
		return 0, gofs.ToErrno(err) // ENXIO past the end is an answer
	}
	return uint64(res), 0
}
