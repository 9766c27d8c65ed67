package fusefs

import (
	"context"
	"errors"
	"os"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"nook/internal/overlay"
)

// node is one file or directory of the union. Its location is cached: the
// kernel looks a name up once and then works on the node.
type node struct {
	gofs.Inode
	u *union
	// layer is the index of the layer holding the node's top copy. dirs
	// lists, for a directory, the layers whose copies merge into it, top
	// first, stopping at an opaque one. Both change only with u.mu held
	// exclusively and are read with it held at least shared.
	layer int32
	dirs  []int32
}

// loc is where a name was found.
type loc struct {
	layer int32
	dirs  []int32
	st    syscall.Stat_t
}

func (n *node) initRoot() error {
	u := n.u
	for i, l := range u.layers {
		var st syscall.Stat_t
		if err := syscall.Stat(l, &st); err != nil {
			return err
		}
		n.dirs = append(n.dirs, int32(i))
		u.ldev = append(u.ldev, st.Dev)
	}
	return nil
}

// path is the node's path relative to the union root ("" for the root).
func (n *node) path() string {
	if n.IsRoot() {
		return ""
	}
	return n.Path(n.Root())
}

func childPath(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// inUpper reports whether the node's top copy is in the upper layer.
func (n *node) inUpper() bool { return n.u.writable && n.layer == 0 }

// realPath is the host path of the node's top copy.
func (n *node) realPath() string { return n.u.layerPath(int(n.layer), n.path()) }

func isOpaque(p string) bool {
	var b [4]byte
	sz, err := unix.Lgetxattr(p, overlay.OpaqueXattr, b[:])
	return err == nil && sz == 1 && b[0] == 'y'
}

func isWhiteout(st *syscall.Stat_t) bool {
	return st.Mode&syscall.S_IFMT == syscall.S_IFCHR && st.Rdev == 0
}

// resolve looks rel up in the given layers (those of its parent directory,
// top first) as overlayfs does: a whiteout or a non-directory ends the
// search, so does an opaque directory after it has been merged.
func (u *union) resolve(layers []int32, rel string) (loc, syscall.Errno) {
	var res loc
	found := false
	for _, l := range layers {
		var st syscall.Stat_t
		p := u.layerPath(int(l), rel)
		if err := syscall.Lstat(p, &st); err != nil {
			if err == syscall.ENOENT || err == syscall.ENOTDIR {
				continue
			}
			return res, u.hostErr("looking up", p, err)
		}
		if isWhiteout(&st) {
			break
		}
		isDir := st.Mode&syscall.S_IFMT == syscall.S_IFDIR
		if !found {
			found = true
			res.layer, res.st = l, st
			if !isDir {
				break
			}
		} else if !isDir {
			break
		}
		res.dirs = append(res.dirs, l)
		if isOpaque(p) {
			break
		}
	}
	if !found {
		return res, syscall.ENOENT
	}
	return res, 0
}

// hostErr turns an unexpected error from a layer into an errno, logging the
// ones that are not the caller's fault.
func (u *union) hostErr(op, p string, err error) syscall.Errno {
	var e syscall.Errno
	if errors.As(err, &e) {
		switch e {
		case syscall.ENOENT, syscall.EEXIST, syscall.ENOTEMPTY, syscall.ENOTDIR, syscall.EISDIR,
			syscall.ENOSPC, syscall.EDQUOT, syscall.ENAMETOOLONG, syscall.EPERM, syscall.EACCES,
			syscall.EINVAL, syscall.ENODATA, syscall.ERANGE, syscall.EOPNOTSUPP, syscall.EROFS,
			syscall.EFBIG, syscall.EMLINK, syscall.EBADF, syscall.EAGAIN, syscall.EINTR:
			return e
		}
	}
	u.log.Warn("unexpected host error", "op", op, "path", p, "err", err)
	return syscall.EIO
}

func (u *union) fillAttr(out *fuse.Attr, st *syscall.Stat_t) {
	out.FromStat(st)
	if u.squash {
		out.Uid, out.Gid = 0, 0
	}
}

// newNode registers the inode for a looked-up or created entry of dir.
func (n *node) newNode(ctx context.Context, l loc, out *fuse.EntryOut) *gofs.Inode {
	u := n.u
	ino := u.vino(&l.st)
	u.fillAttr(&out.Attr, &l.st)
	out.Ino = ino
	child := &node{u: u, layer: l.layer, dirs: l.dirs}
	in := n.NewInode(ctx, child, gofs.StableAttr{Mode: l.st.Mode & syscall.S_IFMT, Ino: ino})
	if old := in.Operations().(*node); old != child {
		// The kernel already knows this inode (a hard link, or a name
		// looked up again): refresh where it lives.
		old.layer, old.dirs = l.layer, l.dirs
	}
	return in
}

var _ = (gofs.NodeLookuper)((*node)(nil))

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	u := n.u
	u.mu.RLock()
	defer u.mu.RUnlock()
	l, errno := u.resolve(n.dirs, childPath(n.path(), name))
	if errno != 0 {
		return nil, errno
	}
	return n.newNode(ctx, l, out), 0
}

var _ = (gofs.NodeGetattrer)((*node)(nil))

func (n *node) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	u := n.u
	u.mu.RLock()
	defer u.mu.RUnlock()
	if fh, ok := f.(*file); ok && (fh.upper || !n.inUpper()) {
		// An open file may be unlinked: ask its descriptor. A descriptor
		// opened below before a copy-up is stale: ask the path.
		var st syscall.Stat_t
		if err := syscall.Fstat(fh.fd, &st); err != nil {
			return u.hostErr("stat", n.path(), err)
		}
		u.fillAttr(&out.Attr, &st)
		return 0
	}
	var st syscall.Stat_t
	p := n.realPath()
	if err := syscall.Lstat(p, &st); err != nil {
		return u.hostErr("stat", p, err)
	}
	u.fillAttr(&out.Attr, &st)
	return 0
}

var _ = (gofs.NodeReadlinker)((*node)(nil))

func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	n.u.mu.RLock()
	defer n.u.mu.RUnlock()
	p := n.realPath()
	buf := make([]byte, 256)
	for {
		sz, err := syscall.Readlink(p, buf)
		if err != nil {
			return nil, n.u.hostErr("readlink", p, err)
		}
		if sz < len(buf) {
			return buf[:sz], 0
		}
		buf = make([]byte, len(buf)*4)
	}
}

var _ = (gofs.NodeStatfser)((*node)(nil))

func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	var st syscall.Statfs_t
	if err := syscall.Statfs(n.u.layers[0], &st); err != nil {
		return n.u.hostErr("statfs", n.u.layers[0], err)
	}
	out.FromStatfsT(&st)
	return 0
}

// file is an open regular file of some layer.
type file struct {
	*gofs.LoopbackFile
	fd    int
	upper bool // opened in the upper layer, so it sees every write
}

var _ = (gofs.NodeOpener)((*node)(nil))

func (n *node) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	u := n.u
	write := flags&syscall.O_ACCMODE != syscall.O_RDONLY || flags&syscall.O_TRUNC != 0
	if write {
		if !u.writable {
			return nil, 0, syscall.EROFS
		}
		if errno := n.copyUp(); errno != 0 {
			return nil, 0, errno
		}
	}
	// Held across the open so no rename can swap the path meanwhile;
	// O_NOFOLLOW in case the layer changed beside us anyway.
	u.mu.RLock()
	p, upper := n.realPath(), n.inUpper()
	flags &^= syscall.O_CREAT | syscall.O_EXCL | syscall.O_NOCTTY | syscall.O_DIRECT
	fd, err := syscall.Open(p, int(flags)|syscall.O_CLOEXEC|syscall.O_NOFOLLOW, 0)
	u.mu.RUnlock()
	if err != nil {
		return nil, 0, u.hostErr("open", p, err)
	}
	return newFile(fd, upper), fuse.FOPEN_KEEP_CACHE, 0
}

func newFile(fd int, upper bool) *file {
	return &file{LoopbackFile: gofs.NewLoopbackFileFromOS(os.NewFile(uintptr(fd), "")), fd: fd, upper: upper}
}

var _ = (gofs.NodeFlusher)((*node)(nil))

// Flush answers ENOSYS so the kernel stops sending FLUSH on every close:
// data goes to the layer on write, there is nothing to flush.
func (n *node) Flush(ctx context.Context, f gofs.FileHandle) syscall.Errno {
	return syscall.ENOSYS
}

var _ = (gofs.NodeOpendirHandler)((*node)(nil))

// OpendirHandle lists the merged directory once; FOPEN_CACHE_DIR lets the
// kernel keep the listing until the directory changes through the mount.
func (n *node) OpendirHandle(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	n.u.mu.RLock()
	defer n.u.mu.RUnlock()
	list, errno := n.u.list(n.dirs, n.path(), true)
	if errno != 0 {
		return nil, 0, errno
	}
	return gofs.NewListDirStream(list), fuse.FOPEN_CACHE_DIR | fuse.FOPEN_KEEP_CACHE, 0
}

// list merges the directory rel of the given layers: each name once, from
// the top layer holding it, whiteouts hidden. With dots it starts with "."
// and "..".
func (u *union) list(layers []int32, rel string, dots bool) ([]fuse.DirEntry, syscall.Errno) {
	var out []fuse.DirEntry
	if dots {
		out = append(out, fuse.DirEntry{Name: ".", Mode: syscall.S_IFDIR}, fuse.DirEntry{Name: "..", Mode: syscall.S_IFDIR})
	}
	var seen map[string]struct{}
	if len(layers) > 1 {
		seen = map[string]struct{}{}
	}
	for i, l := range layers {
		p := u.layerPath(int(l), rel)
		ents, err := readDir(p)
		if err != nil {
			return nil, u.hostErr("reading directory", p, err)
		}
		for _, e := range ents {
			if seen != nil {
				if _, ok := seen[e.Name]; ok {
					continue
				}
				if i < len(layers)-1 {
					seen[e.Name] = struct{}{}
				}
			}
			if e.Mode == 0 || e.Mode == syscall.S_IFCHR {
				var st syscall.Stat_t
				if err := syscall.Lstat(p+"/"+e.Name, &st); err != nil {
					continue // gone meanwhile
				}
				if isWhiteout(&st) {
					continue
				}
				e.Mode = st.Mode & syscall.S_IFMT
			}
			e.Ino = u.vino(&syscall.Stat_t{Dev: u.ldev[l], Ino: e.Ino})
			out = append(out, e)
		}
	}
	return out, 0
}

// readDir reads the entries of directory p (without "." and "..") with
// their type and layer inode number.
func readDir(p string) ([]fuse.DirEntry, error) {
	fd, err := syscall.Open(p, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fd)
	var out []fuse.DirEntry
	buf := make([]byte, 32<<10)
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return out, nil
		}
		for b := buf[:n]; len(b) > 0; {
			var e fuse.DirEntry
			used := e.Parse(b)
			if used <= 0 {
				break
			}
			b = b[used:]
			if e.Name != "." && e.Name != ".." {
				out = append(out, e)
			}
		}
	}
}
