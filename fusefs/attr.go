package fusefs

import (
	"context"
	"fmt"
	"strings"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

var _ = (gofs.NodeSetattrer)((*node)(nil))

func (n *node) Setattr(ctx context.Context, f gofs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	u := n.un()
	if !u.writable {
		return syscall.EROFS
	}
	var handle gofs.FileHandle
	if fh, ok := f.(*file); ok && fh.upper {
		handle = fh
	}
	if handle != nil || n.orphan.Load() != 0 {
		// An open upper handle, or a file with no name left: change the
		// data through a descriptor.
		fd, done, errno := n.ioFd(handle, true)
		if errno != 0 {
			return errno
		}
		defer done()
		var st syscall.Stat_t
		if err := setattrFd(fd, in); err != nil {
			return u.hostErr("setattr", n.path(), err)
		}
		if err := syscall.Fstat(fd, &st); err != nil {
			return u.hostErr("stat", n.path(), err)
		}
		u.fillAttr(&out.Attr, &st)
		out.SetTimeout(u.timeout) // go-fuse leaves SETATTR replies at 0: a GETATTR each
		return 0
	}
	if errno := n.copyUp(); errno != 0 {
		return errno
	}
	// Path operations run with u.mu held so no rename swaps the path.
	u.mu.RLock()
	defer u.mu.RUnlock()
	p := n.realPath()
	if err := setattrPath(p, in); err != nil {
		return u.hostErr("setattr", p, err)
	}
	var st syscall.Stat_t
	if err := p.lstat(&st); err != nil {
		return u.hostErr("stat", p, err)
	}
	u.fillAttr(&out.Attr, &st)
	out.SetTimeout(u.timeout)
	return 0
}

// setattrFd is setattrPath for an open regular file.
func setattrFd(fd int, in *fuse.SetAttrIn) error {
	uid, uok := in.GetUID()
	gid, gok := in.GetGID()
	if uok || gok {
		su, sg := -1, -1
		if uok {
			su = int(uid)
		}
		if gok {
			sg = int(gid)
		}
		if err := syscall.Fchown(fd, su, sg); err != nil {
			return err
		}
	}
	if m, ok := in.GetMode(); ok {
		if err := syscall.Fchmod(fd, m&0o7777); err != nil {
			return err
		}
	}
	if sz, ok := in.GetSize(); ok {
		if err := syscall.Ftruncate(fd, int64(sz)); err != nil {
			return err
		}
	}
	if ts, ok := setattrTimes(in); ok {
		// utimensat(2) takes no descriptor from Go: go through /proc.
		return unix.UtimesNanoAt(unix.AT_FDCWD, fmt.Sprintf("/proc/self/fd/%d", fd), ts, 0)
	}
	return nil
}

// setattrTimes returns the times a SETATTR sets, UTIME_OMIT for the other.
func setattrTimes(in *fuse.SetAttrIn) ([]unix.Timespec, bool) {
	mtime, mok := in.GetMTime()
	atime, aok := in.GetATime()
	if !mok && !aok {
		return nil, false
	}
	ts := []unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Nsec: unix.UTIME_OMIT}}
	if aok {
		ts[0] = unix.NsecToTimespec(atime.UnixNano())
	}
	if mok {
		ts[1] = unix.NsecToTimespec(mtime.UnixNano())
	}
	return ts, true
}

// setattrPath applies a SETATTR to path p: owner before mode (chown clears
// setuid bits), size before times (truncate sets mtime).
func setattrPath(p lpath, in *fuse.SetAttrIn) error {
	uid, uok := in.GetUID()
	gid, gok := in.GetGID()
	if uok || gok {
		su, sg := -1, -1
		if uok {
			su = int(uid)
		}
		if gok {
			sg = int(gid)
		}
		if err := p.lchown(su, sg); err != nil {
			return err
		}
	}
	if m, ok := in.GetMode(); ok {
		if err := p.chmod(m & 0o7777); err != nil {
			return err
		}
	}
	if sz, ok := in.GetSize(); ok {
		if err := p.truncate(int64(sz)); err != nil {
			return err
		}
	}
	if ts, ok := setattrTimes(in); ok {
		return p.utimes(ts)
	}
	return nil
}

// The overlay markers (user.overlay.*) are the layers' business: hidden
// from the mount and refused as overlayfs refuses them.

var _ = (gofs.NodeGetxattrer)((*node)(nil))

func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	if strings.HasPrefix(attr, overlayPrefix) {
		return 0, syscall.ENODATA
	}
	n.un().mu.RLock()
	defer n.un().mu.RUnlock()
	p := n.realPath()
	sz, err := p.getxattr(attr, dest)
	if err == syscall.ERANGE {
		sz, err = p.getxattr(attr, nil)
		if err == nil {
			return uint32(sz), syscall.ERANGE
		}
	}
	if err != nil {
		return 0, n.un().hostErr("getxattr", p, err)
	}
	return uint32(sz), 0
}

var _ = (gofs.NodeListxattrer)((*node)(nil))

func (n *node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	n.un().mu.RLock()
	defer n.un().mu.RUnlock()
	p := n.realPath()
	names, err := listXattrs(p)
	if err != nil {
		return 0, n.un().hostErr("listxattr", p, err)
	}
	var b []byte
	for _, name := range names {
		if !strings.HasPrefix(name, overlayPrefix) {
			b = append(append(b, name...), 0)
		}
	}
	if len(dest) == 0 {
		return uint32(len(b)), 0
	}
	if len(b) > len(dest) {
		return uint32(len(b)), syscall.ERANGE
	}
	return uint32(copy(dest, b)), 0
}

var _ = (gofs.NodeSetxattrer)((*node)(nil))

func (n *node) Setxattr(ctx context.Context, attr string, data []byte, flags uint32) syscall.Errno {
	return n.changeXattr(attr, func(p lpath) error { return p.setxattr(attr, data, int(flags)) })
}

var _ = (gofs.NodeRemovexattrer)((*node)(nil))

func (n *node) Removexattr(ctx context.Context, attr string) syscall.Errno {
	return n.changeXattr(attr, func(p lpath) error { return p.removexattr(attr) })
}

func (n *node) changeXattr(attr string, change func(p lpath) error) syscall.Errno {
	if strings.HasPrefix(attr, overlayPrefix) {
		return syscall.EPERM
	}
	if !n.un().writable {
		return syscall.EROFS
	}
	if errno := n.copyUp(); errno != 0 {
		return errno
	}
	n.un().mu.RLock()
	defer n.un().mu.RUnlock()
	p := n.realPath()
	if err := change(p); err != nil {
		return n.un().hostErr("changing xattr", p, err)
	}
	return 0
}
