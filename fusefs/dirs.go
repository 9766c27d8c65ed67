package fusefs

import (
	"context"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// Directories are listed without handles when the kernel allows it
// (FUSE_NO_OPENDIR_SUPPORT): OPENDIR answers ENOSYS once, and the kernel
// then lists directories without OPENDIR and RELEASEDIR round trips,
// caching each listing (FOPEN_CACHE_DIR is its default then) until the
// directory changes through the mount. A warm walk of a tree then costs
// no round trip at all. go-fuse's node API knows nothing of handle-less
// listings, so dirFS, wrapping its raw file system, answers a READDIR
// without handle by opening, reading and releasing a handle inside the
// server.
type dirFS struct {
	fuse.RawFileSystem
	u *union
}

// noOpendir reports whether the kernel lists directories without asking
// once told so (Linux 5.1).
func (u *union) noOpendir() bool {
	return u.srv != nil && u.srv.KernelSettings().Flags64()&fuse.CAP_NO_OPENDIR_SUPPORT != 0
}

func (d *dirFS) OpenDir(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) fuse.Status {
	d.u.opens.Add(1)
	if d.u.noOpendir() {
		return fuse.ENOSYS
	}
	return d.RawFileSystem.OpenDir(cancel, in, out)
}

func (d *dirFS) ReadDir(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return d.withHandle(cancel, in, func(in *fuse.ReadIn) fuse.Status {
		return d.RawFileSystem.ReadDir(cancel, in, out)
	})
}

func (d *dirFS) ReadDirPlus(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	return d.withHandle(cancel, in, func(in *fuse.ReadIn) fuse.Status {
		return d.RawFileSystem.ReadDirPlus(cancel, in, out)
	})
}

// withHandle runs read with a handle of its own when the kernel sent none.
func (d *dirFS) withHandle(cancel <-chan struct{}, in *fuse.ReadIn, read func(*fuse.ReadIn) fuse.Status) fuse.Status {
	if in.Fh != 0 {
		return read(in)
	}
	var out fuse.OpenOut
	if st := d.RawFileSystem.OpenDir(cancel, &fuse.OpenIn{InHeader: in.InHeader}, &out); !st.Ok() {
		return st
	}
	own := *in
	own.Fh = out.Fh
	st := read(&own)
	d.RawFileSystem.ReleaseDir(&fuse.ReleaseIn{InHeader: in.InHeader, Fh: out.Fh})
	return st
}

var _ = (gofs.NodeOpendirHandler)((*node)(nil))

// OpendirHandle returns a listing made on the first READDIR: with
// FOPEN_CACHE_DIR the kernel mostly answers from its cache and never asks.
func (n *node) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	return &dirHandle{n: n}, fuse.FOPEN_CACHE_DIR | fuse.FOPEN_KEEP_CACHE, 0
}

// dirHandle is an open directory; go-fuse serializes calls on it.
type dirHandle struct {
	n      *node
	list   []fuse.DirEntry
	loaded bool
	idx    int
}

var (
	_ = (gofs.FileReaddirenter)((*dirHandle)(nil))
	_ = (gofs.FileSeekdirer)((*dirHandle)(nil))
	_ = (gofs.FileReleasedirer)((*dirHandle)(nil))
)

func (d *dirHandle) load() syscall.Errno {
	n := d.n
	n.un().mu.RLock()
	defer n.un().mu.RUnlock()
	list, errno := n.un().list(n.merged(), n.path(), true)
	if errno != 0 {
		return errno
	}
	d.list, d.loaded, d.idx = list, true, 0
	return 0
}

func (d *dirHandle) Readdirent(ctx context.Context) (*fuse.DirEntry, syscall.Errno) {
	if !d.loaded {
		if errno := d.load(); errno != 0 {
			return nil, errno
		}
	}
	if d.idx >= len(d.list) {
		return nil, 0
	}
	e := &d.list[d.idx]
	d.idx++
	e.Off = uint64(d.idx)
	return e, 0
}

// Seekdir to 0 (rewinddir) lists the directory afresh; a handle-less
// READDIR continuing a listing seeks to where the last one stopped.
func (d *dirHandle) Seekdir(ctx context.Context, off uint64) syscall.Errno {
	if off == 0 {
		d.loaded = false
		return 0
	}
	if !d.loaded {
		if errno := d.load(); errno != 0 {
			return errno
		}
	}
	if off > uint64(len(d.list)) {
		return syscall.EINVAL
	}
	d.idx = int(off)
	return 0
}

func (d *dirHandle) Releasedir(ctx context.Context, flags uint32) {}
