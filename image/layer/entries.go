package layer

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"nook/internal/overlay"
)

// whiteout turns ".wh..wh..opq" into an opaque directory and ".wh.NAME"
// into overlay's whiteout, a 0/0 character device.
func (a *applier) whiteout(name, base string, hdr *tar.Header) error {
	parent := path.Dir(name)
	if base == overlay.OpaqueMarker {
		fd, err := a.dirs.open(parent, true)
		if err != nil {
			return fmt.Errorf("entry %q: %w", name, err)
		}
		if err := unix.Fsetxattr(fd, overlay.OpaqueXattr, []byte(overlay.OpaqueValue), 0); err != nil {
			return fmt.Errorf("marking %q opaque: %w", parent, err)
		}
		return nil
	}
	target := strings.TrimPrefix(base, overlay.WhiteoutPrefix)
	if target == "" || target == "." || target == ".." {
		return fmt.Errorf("%w: entry %q: whiteout of %q", ErrUnsafe, name, target)
	}
	pfd, err := a.dirs.open(parent, true)
	if err != nil {
		return fmt.Errorf("entry %q: %w", name, err)
	}
	wname := joinRel(parent, target)
	if err := a.create(pfd, wname, target, func() error { return unix.Mknodat(pfd, target, unix.S_IFCHR, 0) }); err != nil {
		return err
	}
	// Owner and times from the marker make two unpacks of a layer agree.
	if err := a.chown(wname, hdr.Uid, hdr.Gid, func(u, g int) error {
		return unix.Fchownat(pfd, target, u, g, unix.AT_SYMLINK_NOFOLLOW)
	}); err != nil {
		return err
	}
	return a.times(pfd, target, wname, hdr)
}

// aufsMeta matches aufs's bookkeeping (".wh..wh.plnk/...", ".wh..wh.aufs")
// that old Docker layers carry: any component starting ".wh..wh." other
// than the opaque marker.
func aufsMeta(name string) bool {
	if !strings.Contains(name, overlay.WhiteoutPrefix+overlay.WhiteoutPrefix) {
		return false
	}
	for comp := range strings.SplitSeq(name, "/") {
		if strings.HasPrefix(comp, overlay.WhiteoutPrefix+overlay.WhiteoutPrefix) && comp != overlay.OpaqueMarker {
			return true
		}
	}
	return false
}

// create runs mk, which makes base in pfd; if base exists it is removed
// (a directory with everything below it) and mk runs again.
func (a *applier) create(pfd int, name, base string, mk func() error) error {
	err := mk()
	if err == unix.EEXIST {
		if err = removeAllAt(pfd, base); err != nil {
			return fmt.Errorf("replacing %q: %w", name, err)
		}
		a.dirs.invalidate(name)
		err = mk()
	}
	if err != nil {
		return fmt.Errorf("creating %q: %w", name, err)
	}
	return nil
}

func (a *applier) parent(name string) (int, string, error) {
	pfd, err := a.dirs.open(path.Dir(name), true)
	if err != nil {
		return -1, "", fmt.Errorf("entry %q: %w", name, err)
	}
	return pfd, path.Base(name), nil
}

func (a *applier) file(name string, hdr *tar.Header, xattrs []xattr) error {
	pfd, base, err := a.parent(name)
	if err != nil {
		return err
	}
	fd := -1
	err = a.create(pfd, name, base, func() (err error) {
		fd, err = unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		return err
	})
	if err != nil {
		return err
	}
	defer func() {
		if fd >= 0 {
			unix.Close(fd)
		}
	}()
	switch {
	case isSparse(hdr):
		if err := a.writeSparse(fd, name, hdr.Size); err != nil {
			return err
		}
	case hdr.Size > 0:
		if _, err := io.CopyBuffer(fdWriter(fd), &a.data, a.buf); err != nil {
			return a.dataError(name, err)
		}
		startWriteback(fd, 0, 0)
	}
	if err := a.chown(name, hdr.Uid, hdr.Gid, func(u, g int) error { return unix.Fchown(fd, u, g) }); err != nil {
		return err
	}
	if err := a.recordOwner(fd, name, hdr.Uid, hdr.Gid); err != nil {
		return err
	}
	// After chown, which clears setuid/setgid bits.
	if err := unix.Fchmod(fd, perm(hdr)); err != nil {
		return fmt.Errorf("setting mode of %q: %w", name, err)
	}
	if err := a.setXattrs(fd, name, xattrs); err != nil {
		return err
	}
	err = unix.Close(fd)
	fd = -1
	if err != nil {
		return fmt.Errorf("closing %q: %w", name, err)
	}
	return a.times(pfd, base, name, hdr)
}

// dataError tells a truncated entry (ErrCorrupt) from a failing source
// or disk (passed through).
func (a *applier) dataError(name string, err error) error {
	switch {
	case a.data.err == nil:
		return fmt.Errorf("writing %q: %w", name, err)
	case a.src.err != nil && a.src.err != io.EOF && errors.Is(err, a.src.err):
		return fmt.Errorf("reading data of entry %q: %w", name, err)
	}
	return fmt.Errorf("%w: reading data of entry %q: %w", ErrCorrupt, name, err)
}

func (a *applier) dir(name string, hdr *tar.Header, xattrs []xattr) error {
	pfd, base, err := a.parent(name)
	if err != nil {
		return err
	}
	err = unix.Mkdirat(pfd, base, 0o700)
	if err == unix.EEXIST {
		var st unix.Stat_t
		if err = unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			err = a.create(pfd, name, base, func() error { return unix.Mkdirat(pfd, base, 0o700) })
		}
	}
	if err != nil {
		return fmt.Errorf("creating directory %q: %w", name, err)
	}
	return a.dirMetadata(name, hdr, xattrs)
}

// dirMetadata sets what can be set on a directory now and keeps the rest
// for fixDirs.
func (a *applier) dirMetadata(name string, hdr *tar.Header, xattrs []xattr) error {
	fd, err := a.dirs.open(name, false)
	if err != nil {
		return fmt.Errorf("entry %q: %w", name, err)
	}
	if err := a.chown(name, hdr.Uid, hdr.Gid, func(u, g int) error { return unix.Fchown(fd, u, g) }); err != nil {
		return err
	}
	if err := a.recordOwner(fd, name, hdr.Uid, hdr.Gid); err != nil {
		return err
	}
	if err := a.setXattrs(fd, name, xattrs); err != nil {
		return err
	}
	a.fixups[name] = dirMeta{mode: perm(hdr), atime: atime(hdr), mtime: hdr.ModTime}
	return nil
}

func (a *applier) symlink(name string, hdr *tar.Header, xattrs []xattr) error {
	if strings.IndexByte(hdr.Linkname, 0) >= 0 {
		return fmt.Errorf("%w: entry %q: link target contains NUL", ErrUnsafe, name)
	}
	pfd, base, err := a.parent(name)
	if err != nil {
		return err
	}
	// The target is stored, never followed: it is resolved inside the
	// container later.
	if err := a.create(pfd, name, base, func() error { return unix.Symlinkat(hdr.Linkname, pfd, base) }); err != nil {
		return err
	}
	return a.special(pfd, base, name, hdr, xattrs, false)
}

func (a *applier) fifo(name string, hdr *tar.Header, xattrs []xattr) error {
	pfd, base, err := a.parent(name)
	if err != nil {
		return err
	}
	if err := a.create(pfd, name, base, func() error { return unix.Mknodat(pfd, base, unix.S_IFIFO|0o600, 0) }); err != nil {
		return err
	}
	return a.special(pfd, base, name, hdr, xattrs, true)
}

// special sets the metadata of a symlink or FIFO, which cannot be opened
// for writing; user.* xattrs do not exist on them.
func (a *applier) special(pfd int, base, name string, hdr *tar.Header, xattrs []xattr, chmod bool) error {
	if err := a.chown(name, hdr.Uid, hdr.Gid, func(u, g int) error {
		return unix.Fchownat(pfd, base, u, g, unix.AT_SYMLINK_NOFOLLOW)
	}); err != nil {
		return err
	}
	if chmod {
		// base was just made as a FIFO, not a symlink, so following is moot.
		if err := unix.Fchmodat(pfd, base, perm(hdr), 0); err != nil {
			return fmt.Errorf("setting mode of %q: %w", name, err)
		}
	}
	for _, x := range xattrs {
		a.skip(name, fmt.Sprintf("xattr %s (only files and directories carry xattrs)", x.name))
	}
	return a.times(pfd, base, name, hdr)
}

// hardlink links name to an earlier entry of this layer. The target is
// resolved like any name: inside dir, through no symlink.
func (a *applier) hardlink(name string, hdr *tar.Header) error {
	target, err := cleanName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hardlink %q, target: %w", name, err)
	}
	if target == name {
		return nil
	}
	if a.skipped[target] {
		a.skip(name, fmt.Sprintf("hardlink to %s, which was left out", target))
		a.skipped[name] = true
		return nil
	}
	if target == "." {
		return fmt.Errorf("%w: hardlink %q to the layer root", ErrUnsafe, name)
	}
	tfd, err := walkFromRoot(a.dirs.root, path.Dir(target))
	if err != nil {
		return fmt.Errorf("hardlink %q to %q: %w", name, hdr.Linkname, missingToUnsafe(err))
	}
	defer unix.Close(tfd)
	tbase := path.Base(target)
	var st unix.Stat_t
	if err := unix.Fstatat(tfd, tbase, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("hardlink %q to %q: %w", name, hdr.Linkname, missingToUnsafe(err))
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return fmt.Errorf("%w: hardlink %q to directory %q", ErrCorrupt, name, hdr.Linkname)
	}
	pfd, base, err := a.parent(name)
	if err != nil {
		return err
	}
	// Flags 0: link the target itself, even when it is a symlink.
	return a.create(pfd, name, base, func() error { return unix.Linkat(tfd, tbase, pfd, base, 0) })
}

func walkFromRoot(root int, rel string) (int, error) {
	if rel == "." {
		return unix.Dup(root)
	}
	return walk(root, ".", rel, false)
}

func missingToUnsafe(err error) error {
	if errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("%w: target does not exist in the layer", ErrUnsafe)
	}
	return err
}
