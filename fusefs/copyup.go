package fusefs

import (
	"errors"
	"io"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"nook/internal/overlay"
)

// Copy-up moves a lower entry into the upper layer before it changes. The
// copy is built in the work directory, complete with content and metadata,
// and renamed into place: a crash leaves either no copy or a whole one.

// copyUp copies the node into the upper layer if it is not there yet.
func (n *node) copyUp() syscall.Errno {
	u := n.un()
	u.mu.RLock()
	done := n.inUpper()
	u.mu.RUnlock()
	if done {
		return 0
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return n.copyUpLocked()
}

// copyUpLocked is copyUp with u.mu held exclusively.
func (n *node) copyUpLocked() syscall.Errno {
	if !n.un().writable {
		return syscall.EROFS
	}
	if n.inUpper() {
		return 0
	}
	if n.IsRoot() {
		return syscall.EIO // the upper root always exists
	}
	_, parent := n.Parent()
	if parent == nil {
		return syscall.ESTALE // unlinked meanwhile
	}
	if errno := asNode(parent.Operations()).copyUpLocked(); errno != 0 {
		return errno
	}
	rel := n.path()
	src := n.realPath()
	var st syscall.Stat_t
	if err := src.lstat(&st); err != nil {
		return n.un().hostErr("copy-up stat", src, err)
	}
	if errno := n.un().copyUpPath(rel, int(n.top()), &st, n.StableAttr().Ino); errno != 0 {
		return errno
	}
	var dirs []int32
	if n.IsDir() {
		dirs = append([]int32{0}, n.merged()...)
	}
	n.setLoc(0, dirs)
	return 0
}

// copyUpPath copies the entry rel of layer (lstat result st) to the upper
// layer, whose parent directory must exist, keeping inode number ino. A
// directory is copied without its entries: it merges with the one below.
func (u *union) copyUpPath(rel string, layer int, st *syscall.Stat_t, ino uint64) syscall.Errno {
	src := u.layerPath(layer, rel)
	tmp := u.tmpName()
	if err := u.copyEntry(src, tmp, st); err != nil {
		_ = tmp.removeAll()
		return u.hostErr("copying up", src, err)
	}
	dst := u.upperPath(rel)
	// A copy-up is no change of the parent: keep its times, as overlayfs.
	var pst syscall.Stat_t
	parent := u.upperPath(parentOf(rel))
	perr := parent.lstat(&pst)
	if err := tmp.rename(dst, unix.RENAME_NOREPLACE); err != nil {
		_ = tmp.removeAll()
		return u.hostErr("copying up", dst, err)
	}
	if perr == nil {
		ts := []unix.Timespec{unix.Timespec(pst.Atim), unix.Timespec(pst.Mtim)}
		_ = parent.utimes(ts)
	}
	var nst syscall.Stat_t
	if err := dst.lstat(&nst); err == nil {
		u.recordOrigin(&nst, ino)
	}
	return 0
}

func parentOf(rel string) string {
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		return rel[:i]
	}
	return ""
}

// copyEntry makes dst a copy of src (not of a directory's entries).
func (u *union) copyEntry(src, dst lpath, st *syscall.Stat_t) error {
	var err error
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		err = dst.mkdir(0o700)
	case syscall.S_IFREG:
		err = copyData(src, dst, st.Size, !u.volatile)
	case syscall.S_IFLNK:
		var target string
		if target, err = readlink(src); err == nil {
			err = dst.symlink(target)
		}
	default:
		err = dst.mknod(st.Mode, int(st.Rdev))
	}
	if err != nil {
		return err
	}
	return copyMeta(src, dst, st)
}

// copyMeta gives dst the owner, mode, xattrs and times of src. The order
// matters: chown clears setuid bits and capabilities, so it goes first.
func copyMeta(src, dst lpath, st *syscall.Stat_t) error {
	if err := dst.lchown(int(st.Uid), int(st.Gid)); err != nil && !errors.Is(err, syscall.EPERM) && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	link := st.Mode&syscall.S_IFMT == syscall.S_IFLNK
	if !link {
		if err := dst.chmod(st.Mode & 0o7777); err != nil {
			return err
		}
		if err := copyXattrs(src, dst); err != nil {
			return err
		}
	}
	ts := []unix.Timespec{unix.Timespec(st.Atim), unix.Timespec(st.Mtim)}
	return dst.utimes(ts)
}

// readlink returns the target of the symlink p.
func readlink(p lpath) (string, error) {
	buf := make([]byte, 256)
	for {
		n, err := p.readlink(buf)
		if err != nil {
			return "", err
		}
		if n < len(buf) {
			return string(buf[:n]), nil
		}
		buf = make([]byte, len(buf)*4)
	}
}

// copyXattrs copies every xattr but the overlay markers, which describe
// src's place in its own layer, not the copy's.
func copyXattrs(src, dst lpath) error {
	names, err := listXattrs(src)
	if err != nil || len(names) == 0 {
		return err
	}
	buf := make([]byte, 4096)
	for _, name := range names {
		if strings.HasPrefix(name, overlayPrefix) {
			continue
		}
		val, err := getXattr(src, name, buf)
		if errors.Is(err, syscall.ENODATA) {
			continue
		}
		if err != nil {
			return err
		}
		if err := dst.setxattr(name, val, 0); err != nil {
			return err
		}
	}
	return nil
}

func listXattrs(p lpath) ([]string, error) {
	sz, err := p.listxattr(nil)
	for err == nil && sz > 0 {
		buf := make([]byte, sz)
		var n int
		n, err = p.listxattr(buf)
		if errors.Is(err, syscall.ERANGE) {
			sz, err = p.listxattr(nil)
			continue
		}
		if err != nil {
			break
		}
		var names []string
		for _, s := range strings.Split(string(buf[:n]), "\x00") {
			if s != "" {
				names = append(names, s)
			}
		}
		return names, nil
	}
	if errors.Is(err, syscall.ENOTSUP) {
		return nil, nil
	}
	return nil, err
}

func getXattr(p lpath, name string, buf []byte) ([]byte, error) {
	for {
		n, err := p.getxattr(name, buf)
		if errors.Is(err, syscall.ERANGE) {
			sz, err := p.getxattr(name, nil)
			if err != nil {
				return nil, err
			}
			buf = make([]byte, sz+1)
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

// copyData copies a regular file's content, keeping holes: only the data
// extents are copied, with copy_file_range (reflinks where the filesystem
// can), and the copy is synced (with sync set) before it is renamed into
// sight, as overlayfs does.
func copyData(src, dst lpath, size int64, sync bool) (err error) {
	ifd, err := src.open(syscall.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	in := os.NewFile(uintptr(ifd), src.String())
	defer in.Close()
	ofd, err := dst.open(syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	out := os.NewFile(uintptr(ofd), dst.String())
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	sfd := int(in.Fd())
	for off := int64(0); off < size; {
		data, err := unix.Seek(sfd, off, unix.SEEK_DATA)
		if errors.Is(err, syscall.ENXIO) {
			break // only a hole remains
		}
		if err != nil {
			data = off // no SEEK_DATA: copy everything
		}
		end, err := unix.Seek(sfd, data, unix.SEEK_HOLE)
		if err != nil {
			end = size
		}
		if err := copyRange(in, out, data, end-data); err != nil {
			return err
		}
		off = end
	}
	if err := out.Truncate(size); err != nil {
		return err
	}
	if !sync {
		return nil
	}
	return out.Sync()
}

func copyRange(in, out *os.File, off, n int64) error {
	sfd, dfd := int(in.Fd()), int(out.Fd())
	roff, woff := off, off
	for n > 0 {
		c, err := unix.CopyFileRange(sfd, &roff, dfd, &woff, int(min(n, 1<<30)), 0)
		if err != nil {
			if errors.Is(err, syscall.EXDEV) || errors.Is(err, syscall.ENOSYS) || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.EOPNOTSUPP) {
				_, err := io.Copy(io.NewOffsetWriter(out, woff), io.NewSectionReader(in, roff, n))
				return err
			}
			return err
		}
		if c == 0 {
			break // source shrank
		}
		n -= int64(c)
	}
	return nil
}

// makeSelfContained copies every entry of the merged directory dn that
// lives below into the upper layer and marks the upper directory opaque,
// so it no longer depends on the layers below: it can then be renamed
// like any upper directory. Each step keeps the merged view unchanged,
// so a crash midway is harmless.
func (dn *node) makeSelfContained() syscall.Errno {
	if errno := dn.copyUpLocked(); errno != 0 {
		return errno
	}
	u := dn.un()
	if dirs := dn.merged(); len(dirs) > 1 {
		if errno := u.copyTree(dn.path(), dirs); errno != 0 {
			return errno
		}
		p := u.upperPath(dn.path())
		if err := p.setxattr(overlay.OpaqueXattr, []byte(overlay.OpaqueValue), 0); err != nil {
			return u.hostErr("marking opaque", p, err)
		}
	}
	markUpper(dn)
	return 0
}

// copyTree copies the entries of the merged directory rel (already in the
// upper layer) that live below into the upper layer, recursively.
func (u *union) copyTree(rel string, dirs []int32) syscall.Errno {
	ents, errno := u.list(dirs, rel, false)
	if errno != 0 {
		return errno
	}
	for _, e := range ents {
		crel := childPath(rel, e.Name)
		l, errno := u.resolve(dirs, crel)
		if errno != 0 {
			return errno
		}
		if l.layer != 0 {
			if errno := u.copyUpPath(crel, int(l.layer), &l.st, u.vino(&l.st)); errno != 0 {
				return errno
			}
			if l.dirs != nil {
				l.dirs = append([]int32{0}, l.dirs...)
			}
		}
		if len(l.dirs) > 1 {
			if errno := u.copyTree(crel, l.dirs); errno != 0 {
				return errno
			}
		}
	}
	return 0
}

// markUpper records that n and every known node below it now live wholly
// in the upper layer.
func markUpper(n *node) {
	if !n.IsDir() {
		n.setLoc(0, nil)
		return
	}
	n.setLoc(0, []int32{0})
	for _, c := range n.Children() {
		markUpper(c.Operations().(*node))
	}
}
