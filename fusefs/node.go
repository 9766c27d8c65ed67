package fusefs

import (
	"context"
	"errors"
	"sync/atomic"
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
	// layer is the index of the layer holding the node's top copy. dirs
	// lists, for a directory, the layers whose copies merge into it, top
	// first, stopping at an opaque one (nil for other nodes). Both change
	// with u.mu held exclusively, or shared when a lookup finds the node
	// again, hence atomics; they are read with u.mu held at least shared.
	layer atomic.Int32
	// orphan, when not zero, is the descriptor of the data of a regular
	// file that lost its name while the kernel knew it (see io.go).
	orphan atomic.Int32
	dirs   atomic.Pointer[[]int32]
}

// rootNode is the root of the union. It alone holds the union's state,
// which saves every other node a pointer: memory per file is the bar.
type rootNode struct {
	node
	u *union
}

// un returns the union n belongs to.
func (n *node) un() *union { return n.Root().Operations().(*rootNode).u }

// asNode returns the node behind the InodeEmbedder of one of our inodes.
func asNode(ops gofs.InodeEmbedder) *node {
	if r, ok := ops.(*rootNode); ok {
		return &r.node
	}
	return ops.(*node)
}

// top is the index of the layer holding the node's top copy.
func (n *node) top() int32 { return n.layer.Load() }

// merged lists the layers merging into a directory node, top first.
func (n *node) merged() []int32 {
	if p := n.dirs.Load(); p != nil {
		return *p
	}
	return nil
}

// setLoc records where the node lives now.
func (n *node) setLoc(layer int32, dirs []int32) {
	if n.layer.Swap(layer) != layer {
		n.un().reads.drop(n) // a cached descriptor reads the old copy
		n.un().writes.drop(n)
	}
	if dirs == nil {
		n.dirs.Store(nil)
	} else {
		n.dirs.Store(&dirs)
	}
}

// loc is where a name was found.
type loc struct {
	layer int32
	dirs  []int32
	st    syscall.Stat_t
}

// init records where the root lives: every layer merges into it.
func (r *rootNode) init() error {
	u := r.u
	var dirs []int32
	for i := range u.layers {
		var st syscall.Stat_t
		if err := syscall.Fstat(u.fds[i], &st); err != nil {
			return err
		}
		dirs = append(dirs, int32(i))
		u.ldev = append(u.ldev, st.Dev)
	}
	r.dirs.Store(&dirs)
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
func (n *node) inUpper() bool { return n.un().writable && n.top() == 0 }

// realPath is the node's top copy in its layer.
func (n *node) realPath() lpath { return n.un().layerPath(int(n.top()), n.path()) }

func isOpaque(p lpath) bool {
	var b [4]byte
	sz, err := p.getxattr(overlay.OpaqueXattr, b[:])
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
		if err := p.lstat(&st); err != nil {
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
// p is a path or an lpath.
func (u *union) hostErr(op string, p any, err error) syscall.Errno {
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
	u := n.un()
	ino := u.vino(&l.st)
	u.fillAttr(&out.Attr, &l.st)
	out.Ino = ino
	child := &node{}
	child.layer.Store(l.layer)
	if l.dirs != nil {
		child.dirs.Store(&l.dirs)
	}
	in := n.NewInode(ctx, child, gofs.StableAttr{Mode: l.st.Mode & syscall.S_IFMT, Ino: ino})
	if old := in.Operations().(*node); old != child {
		// The kernel already knows this inode (a hard link, or a name
		// looked up again): refresh where it lives.
		old.setLoc(l.layer, l.dirs)
	}
	return in
}

var _ = (gofs.NodeLookuper)((*node)(nil))

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	u := n.un()
	u.mu.RLock()
	defer u.mu.RUnlock()
	l, errno := u.resolve(n.merged(), childPath(n.path(), name))
	if errno != 0 {
		return nil, errno
	}
	return n.newNode(ctx, l, out), 0
}

var _ = (gofs.NodeGetattrer)((*node)(nil))

func (n *node) Getattr(ctx context.Context, f gofs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	u := n.un()
	u.mu.RLock()
	defer u.mu.RUnlock()
	var st syscall.Stat_t
	var err error
	var p lpath
	if fh, ok := f.(*file); ok && (fh.upper || !n.inUpper()) {
		// An open file may be unlinked: ask its descriptor. A descriptor
		// opened below before a copy-up is stale: ask the path.
		err = syscall.Fstat(fh.fd, &st)
	} else if o := n.orphan.Load(); o != 0 {
		err = syscall.Fstat(int((o-1)>>2), &st)
		if (o-1)&orphanLower != 0 {
			st.Nlink = 0 // whited out, though the lower file stays
		}
	} else {
		p = n.realPath()
		err = p.lstat(&st)
	}
	if err != nil {
		return u.hostErr("stat", p, err)
	}
	u.fillAttr(&out.Attr, &st)
	return 0
}

var _ = (gofs.NodeReadlinker)((*node)(nil))

func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	u := n.un()
	u.mu.RLock()
	defer u.mu.RUnlock()
	p := n.realPath()
	buf := make([]byte, 256)
	for {
		sz, err := p.readlink(buf)
		if err != nil {
			return nil, u.hostErr("readlink", p, err)
		}
		if sz < len(buf) {
			return buf[:sz], 0
		}
		buf = make([]byte, len(buf)*4)
	}
}

var _ = (gofs.NodeStatfser)((*node)(nil))

func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	u := n.un()
	var st syscall.Statfs_t
	if err := syscall.Statfs(u.layers[0], &st); err != nil {
		return u.hostErr("statfs", u.layers[0], err)
	}
	out.FromStatfsT(&st)
	return 0
}

var _ = (gofs.NodeOpener)((*node)(nil))

// Open answers ENOSYS so that the kernel stops asking (see io.go); only a
// kernel without no-open support gets handles.
func (n *node) Open(ctx context.Context, flags uint32) (gofs.FileHandle, uint32, syscall.Errno) {
	u := n.un()
	u.opens.Add(1)
	if u.noOpen() {
		return nil, 0, syscall.ENOSYS
	}
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
	fd, err := p.open(int(flags)|syscall.O_NOFOLLOW, 0)
	u.mu.RUnlock()
	if err != nil {
		return nil, 0, u.hostErr("open", p, err)
	}
	return &file{fd: fd, upper: upper}, fuse.FOPEN_KEEP_CACHE, 0
}

var _ = (gofs.NodeFlusher)((*node)(nil))

// Flush answers ENOSYS so the kernel stops sending FLUSH on every close:
// data goes to the layer on write, there is nothing to flush.
func (n *node) Flush(ctx context.Context, f gofs.FileHandle) syscall.Errno {
	return syscall.ENOSYS
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
				if err := p.child(e.Name).lstat(&st); err != nil {
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
func readDir(p lpath) ([]fuse.DirEntry, error) {
	fd, err := p.open(syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
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
