package fusefs

import (
	"context"
	"fmt"
	"os"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"nook/internal/overlay"
)

// Every change takes u.mu exclusively: it may copy parents up, place or
// remove whiteouts, and must not interleave with another change or a lookup.

// upperWhiteout reports whether the upper layer holds a whiteout at rel.
func (u *union) upperWhiteout(rel string) bool {
	var st syscall.Stat_t
	return u.upperPath(rel).lstat(&st) == nil && isWhiteout(&st)
}

// lowerHas reports what the layers below the upper (of the parent's dirs)
// hold at rel: entry if a visible entry, any if anything, whiteouts too.
func (u *union) lowerHas(dirs []int32, rel string) (entry, any bool) {
	for _, l := range dirs {
		if l == 0 && u.writable {
			continue
		}
		var st syscall.Stat_t
		if err := u.layerPath(int(l), rel).lstat(&st); err != nil {
			if err == syscall.ENOENT || err == syscall.ENOTDIR {
				continue
			}
			return true, true // unreadable: assume the worst, keep it hidden
		}
		return !isWhiteout(&st), true
	}
	return false, false
}

// owner returns the owner of an entry created by the caller in the upper
// directory dir: the caller's ids, or the directory's group when it is
// setgid (also inherited by directories).
func (u *union) owner(ctx context.Context, dir lpath) (uid, gid int, sgid bool) {
	uid, gid = callerIDs(ctx)
	var st syscall.Stat_t
	if dir.stat(&st) == nil && st.Mode&syscall.S_ISGID != 0 {
		gid, sgid = int(st.Gid), true
	}
	return uid, gid, sgid
}

// callerIDs returns the ids of the process making the request.
func callerIDs(ctx context.Context) (uid, gid int) {
	if c, ok := fuse.FromContext(ctx); ok {
		return int(c.Uid), int(c.Gid)
	}
	return os.Geteuid(), os.Getegid()
}

// entryKind is what own needs to know of a new entry: a directory may
// inherit its parent's setgid bit, a symlink has no mode of its own.
type entryKind int

const (
	kindFile entryKind = iota // any other non-directory
	kindDir
	kindLink
)

// own gives a new entry p of kind k its owner and exactly the requested mode: the
// server's umask may have dropped bits, and chown drops setuid bits. st
// receives p's attributes afterwards. The common case, an entry made in
// its own directory for a caller with the server's ids, costs one lstat:
// the host already made it so, setgid directories included. An entry made
// in the work directory gets what its directory dir would give it.
func (u *union) own(ctx context.Context, dir, p lpath, mode uint32, k entryKind, st *syscall.Stat_t) error {
	if err := p.lstat(st); err != nil {
		return err
	}
	changed := false
	uid, gid := callerIDs(ctx)
	sgid := k == kindDir && st.Mode&syscall.S_ISGID != 0 // set by the host from a setgid dir
	if p.dir != dir.dir || parentOf(p.rel) != dir.rel || int(st.Uid) != uid || int(st.Gid) != gid {
		uid, gid, sgid = u.owner(ctx, dir)
		sgid = sgid && k == kindDir
		if int(st.Uid) != uid || int(st.Gid) != gid {
			if err := p.lchown(uid, gid); err != nil && uid != os.Geteuid() {
				// Without privilege (a plain user's mount), or an id outside
				// the namespace: the entry stays the server's, as with any
				// FUSE fs.
				u.log.Debug("cannot give new entry its owner", "path", p, "uid", uid, "err", err)
			}
			changed = true // and setuid bits may be gone
		}
	}
	if k != kindLink {
		want := mode & 0o7777
		if sgid {
			want |= syscall.S_ISGID
		}
		if changed || st.Mode&0o7777 != want {
			if err := p.chmod(want); err != nil {
				return err
			}
			changed = true
		}
	}
	if changed {
		return p.lstat(st)
	}
	return nil
}

// place creates a non-directory at rel in the upper layer with mk, which
// must fail with EEXIST if anything is there. A whiteout there is replaced
// atomically: the entry is made complete in the work directory, then
// renamed over it. moved reports that route: the entry's ctime changed.
func (u *union) place(rel string, mk func(p lpath) error) (moved bool, err error) {
	dst := u.upperPath(rel)
	// The kernel creates only names the union lacks, so in the upper layer
	// there is nothing or a whiteout: try the direct way first.
	if err := mk(dst); err != syscall.EEXIST || !u.upperWhiteout(rel) {
		return false, err
	}
	tmp := u.tmpName()
	if err := mk(tmp); err != nil {
		_ = tmp.unlink()
		return true, err
	}
	if err := tmp.rename(dst, 0); err != nil {
		_ = tmp.unlink()
		return true, err
	}
	return true, nil
}

// created registers a new upper entry rel of directory n. st, if not nil,
// holds its attributes already.
func (n *node) created(ctx context.Context, rel string, st *syscall.Stat_t, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	l := loc{layer: 0}
	if st != nil {
		l.st = *st
	} else {
		p := n.un().upperPath(rel)
		if err := p.lstat(&l.st); err != nil {
			return nil, n.un().hostErr("stat", p, err)
		}
	}
	if l.st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
		l.dirs = []int32{0}
	}
	return n.newNode(ctx, l, out), 0
}

// statIf returns st if ok, else nil.
func statIf(ok bool, st *syscall.Stat_t) *syscall.Stat_t {
	if ok {
		return st
	}
	return nil
}

// lockForChange takes u.mu and copies directory n up.
func (n *node) lockForChange() (string, syscall.Errno) {
	u := n.un()
	if !u.writable {
		return "", syscall.EROFS
	}
	u.mu.Lock()
	if errno := n.copyUpLocked(); errno != 0 {
		u.mu.Unlock()
		return "", errno
	}
	return n.path(), 0
}

var _ = (gofs.NodeCreater)((*node)(nil))

func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	dir, errno := n.lockForChange()
	if errno != 0 {
		return nil, nil, 0, errno
	}
	defer n.un().mu.Unlock()
	u, rel := n.un(), childPath(dir, name)
	fd := -1
	var st syscall.Stat_t
	moved, err := u.place(rel, func(p lpath) error {
		f, err := p.open(int(flags&^syscall.O_DIRECT)|syscall.O_CREAT|syscall.O_EXCL, mode&0o7777)
		if err != nil {
			return err
		}
		fd = f
		return u.own(ctx, u.upperPath(dir), p, mode, kindFile, &st)
	})
	if err == nil && moved {
		err = syscall.Fstat(fd, &st)
	}
	if err != nil {
		if fd >= 0 {
			syscall.Close(fd)
		}
		return nil, nil, 0, u.hostErr("create", rel, err)
	}
	in, _ := n.created(ctx, rel, &st, out)
	if u.noOpen() {
		// A kernel in no-open mode never sends RELEASE, for created
		// files either (fs/fuse/file.c, fuse_file_put): a handle would
		// keep its descriptor open for good, and a RUN writing 20,000
		// files ran out of them. I/O goes by path, as for opened files.
		syscall.Close(fd)
		return in, nil, fuse.FOPEN_KEEP_CACHE, 0
	}
	return in, &file{fd: fd, upper: true}, fuse.FOPEN_KEEP_CACHE, 0
}

var _ = (gofs.NodeTmpfiler)((*node)(nil))

// Tmpfile makes an unnamed file in the upper copy of directory n, as
// open(2) with O_TMPFILE. Its node has no path: the data is reached
// through an orphan descriptor (see io.go), as for an unlinked open file,
// until linkat(2) gives it a name (Link links the descriptor).
func (n *node) Tmpfile(ctx context.Context, flags uint32, mode uint32, out *fuse.EntryOut) (*gofs.Inode, gofs.FileHandle, uint32, syscall.Errno) {
	dir, errno := n.lockForChange()
	if errno != 0 {
		return nil, nil, 0, errno
	}
	defer n.un().mu.Unlock()
	u, dp := n.un(), n.un().upperPath(dir)
	// O_RDWR whatever the caller asked: the orphan must be writable.
	open := int(flags&^(syscall.O_ACCMODE|syscall.O_DIRECT|syscall.O_APPEND|syscall.O_CREAT|syscall.O_EXCL)) | syscall.O_RDWR | syscall.O_CLOEXEC
	fd, err := dp.open(open|unix.O_TMPFILE, mode&0o7777)
	if err != nil {
		return nil, nil, 0, u.hostErr("tmpfile", dp, err)
	}
	var st syscall.Stat_t
	err = u.ownFd(ctx, dp, fd, mode, &st)
	var keep int
	if err == nil {
		keep, err = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	}
	if err != nil {
		syscall.Close(fd)
		return nil, nil, 0, u.hostErr("tmpfile", dp, err)
	}
	ino := u.vino(&st)
	u.fillAttr(&out.Attr, &st)
	out.Ino = ino
	child := &node{}
	child.orphan.Store(int32(keep)<<2 | orphanWritable + 1)
	in := n.NewInode(ctx, child, gofs.StableAttr{Mode: syscall.S_IFREG, Ino: ino})
	return in, &file{fd: fd, upper: true}, fuse.FOPEN_KEEP_CACHE, 0
}

// ownFd is own for the open file fd of a new entry in upper directory dir.
func (u *union) ownFd(ctx context.Context, dir lpath, fd int, mode uint32, st *syscall.Stat_t) error {
	if err := syscall.Fstat(fd, st); err != nil {
		return err
	}
	changed := false
	if uid, gid := callerIDs(ctx); int(st.Uid) != uid || int(st.Gid) != gid {
		uid, gid, _ := u.owner(ctx, dir)
		if int(st.Uid) != uid || int(st.Gid) != gid {
			if err := syscall.Fchown(fd, uid, gid); err != nil && uid != os.Geteuid() {
				u.log.Debug("cannot give new file its owner", "dir", dir, "uid", uid, "err", err)
			}
			changed = true // and setuid bits may be gone
		}
	}
	if want := mode & 0o7777; changed || st.Mode&0o7777 != want {
		if err := syscall.Fchmod(fd, want); err != nil {
			return err
		}
		changed = true
	}
	if changed {
		return syscall.Fstat(fd, st)
	}
	return nil
}

var _ = (gofs.NodeMknoder)((*node)(nil))

func (n *node) Mknod(ctx context.Context, name string, mode uint32, dev uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	dir, errno := n.lockForChange()
	if errno != 0 {
		return nil, errno
	}
	defer n.un().mu.Unlock()
	u, rel := n.un(), childPath(dir, name)
	var st syscall.Stat_t
	moved, err := u.place(rel, func(p lpath) error {
		if err := p.mknod(mode, int(dev)); err != nil {
			return err
		}
		return u.own(ctx, u.upperPath(dir), p, mode, kindFile, &st)
	})
	if err != nil {
		return nil, u.hostErr("mknod", rel, err)
	}
	return n.created(ctx, rel, statIf(!moved, &st), out)
}

var _ = (gofs.NodeSymlinker)((*node)(nil))

func (n *node) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	dir, errno := n.lockForChange()
	if errno != 0 {
		return nil, errno
	}
	defer n.un().mu.Unlock()
	u, rel := n.un(), childPath(dir, name)
	var st syscall.Stat_t
	moved, err := u.place(rel, func(p lpath) error {
		if err := p.symlink(target); err != nil {
			return err
		}
		return u.own(ctx, u.upperPath(dir), p, 0, kindLink, &st)
	})
	if err != nil {
		return nil, u.hostErr("symlink", rel, err)
	}
	return n.created(ctx, rel, statIf(!moved, &st), out)
}

var _ = (gofs.NodeLinker)((*node)(nil))

func (n *node) Link(ctx context.Context, target gofs.InodeEmbedder, name string, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	dir, errno := n.lockForChange()
	if errno != 0 {
		return nil, errno
	}
	defer n.un().mu.Unlock()
	tn := target.(*node)
	if errno := tn.copyUpLocked(); errno != 0 {
		return nil, errno
	}
	u, rel := n.un(), childPath(dir, name)
	link := func(p lpath) error { return p.link(u.upperPath(tn.path())) }
	if o := tn.orphan.Load(); o != 0 {
		if (o-1)&orphanWritable == 0 {
			return nil, syscall.ENOENT // whited out: linkat(2) of a deleted file
		}
		// An O_TMPFILE file, or one unlinked while open: link its data.
		fdPath := fmt.Sprintf("/proc/self/fd/%d", (o-1)>>2)
		link = func(p lpath) error {
			return unix.Linkat(unix.AT_FDCWD, fdPath, p.dir, p.name(), unix.AT_SYMLINK_FOLLOW)
		}
	}
	if _, err := u.place(rel, link); err != nil {
		return nil, u.hostErr("link", rel, err)
	}
	return n.created(ctx, rel, nil, out)
}

var _ = (gofs.NodeMkdirer)((*node)(nil))

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*gofs.Inode, syscall.Errno) {
	dir, errno := n.lockForChange()
	if errno != 0 {
		return nil, errno
	}
	defer n.un().mu.Unlock()
	u, rel := n.un(), childPath(dir, name)
	dst := u.upperPath(rel)
	wh := u.upperWhiteout(rel)
	_, below := u.lowerHas(n.merged(), rel)
	if !wh && !below {
		if err := dst.mkdir(mode & 0o7777); err != nil {
			return nil, u.hostErr("mkdir", rel, err)
		}
		var st syscall.Stat_t
		if err := u.own(ctx, u.upperPath(dir), dst, mode, kindDir, &st); err != nil {
			return nil, u.hostErr("mkdir", rel, err)
		}
		return n.created(ctx, rel, &st, out)
	}
	// Something of that name existed below: the new directory must not
	// show its old entries, so it is opaque from the start.
	tmp := u.tmpName()
	err := tmp.mkdir(mode & 0o7777)
	if err == nil {
		var st syscall.Stat_t
		err = u.own(ctx, u.upperPath(dir), tmp, mode, kindDir, &st)
	}
	if err == nil {
		err = tmp.setxattr(overlay.OpaqueXattr, []byte(overlay.OpaqueValue), 0)
	}
	if err == nil && wh {
		if err = tmp.rename(dst, unix.RENAME_EXCHANGE); err == nil {
			err = tmp.unlink() // the whiteout
		}
	} else if err == nil {
		err = tmp.rename(dst, unix.RENAME_NOREPLACE)
	}
	if err != nil {
		_ = tmp.removeAll()
		return nil, u.hostErr("mkdir", rel, err)
	}
	return n.created(ctx, rel, nil, out)
}

// whiteout makes rel a whiteout in the upper layer, replacing whatever
// upper entry is there in one step.
func (u *union) whiteout(rel string) error {
	dst := u.upperPath(rel)
	var st syscall.Stat_t
	if err := dst.lstat(&st); err == syscall.ENOENT {
		return dst.mknod(syscall.S_IFCHR, 0)
	} else if err != nil {
		return err
	}
	tmp := u.tmpName()
	if err := tmp.mknod(syscall.S_IFCHR, 0); err != nil {
		return err
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		return tmp.rename(dst, 0)
	}
	if err := tmp.rename(dst, unix.RENAME_EXCHANGE); err != nil {
		_ = tmp.unlink()
		return err
	}
	return tmp.removeAll() // the old directory, holding only whiteouts
}

var _ = (gofs.NodeUnlinker)((*node)(nil))

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	return n.remove(name, false)
}

var _ = (gofs.NodeRmdirer)((*node)(nil))

func (n *node) Rmdir(ctx context.Context, name string) syscall.Errno {
	return n.remove(name, true)
}

func (n *node) remove(name string, isDir bool) syscall.Errno {
	u := n.un()
	if !u.writable {
		return syscall.EROFS
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	rel := childPath(n.path(), name)
	l, errno := u.resolve(n.merged(), rel)
	if errno != 0 {
		return errno
	}
	if isDir {
		ents, errno := u.list(l.dirs, rel, false)
		if errno != 0 {
			return errno
		}
		if len(ents) > 0 {
			return syscall.ENOTEMPTY
		}
	}
	inUpper := l.layer == 0
	if !isDir {
		n.orphanChild(name, &l)
	}
	if below, _ := u.lowerHas(n.merged(), rel); below {
		if errno := n.copyUpLocked(); errno != 0 {
			return errno
		}
		if err := u.whiteout(rel); err != nil {
			return u.hostErr("whiteout", rel, err)
		}
	} else if isDir {
		if err := u.upperPath(rel).removeAll(); err != nil { // only whiteouts inside
			return u.hostErr("rmdir", rel, err)
		}
	} else if err := u.upperPath(rel).unlink(); err != nil {
		return u.hostErr("unlink", rel, err)
	}
	if inUpper && l.st.Nlink <= 1 {
		u.forgetOrigin(&l.st)
	}
	return 0
}
