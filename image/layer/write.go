package layer

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"nook/internal/ownerxattr"

	"nook/internal/overlay"
)

// WriteOptions tune Write.
type WriteOptions struct {
	// Root also writes a "./" entry with dir's own mode, owner and mtime,
	// which a flat rootfs export wants and a layer diff does not.
	Root bool
	// Skip, when set, leaves out the entries (and everything below the
	// directories) it returns true for; names are as in the tar, without
	// "./" or a trailing slash.
	Skip func(name string) bool
	// Clamp, when not zero, caps every entry's mtime at it, as a
	// reproducible build (SOURCE_DATE_EPOCH) wants its new layers.
	Clamp  time.Time
	Logger *slog.Logger // nil discards
}

type devIno struct{ dev, ino uint64 }

type writer struct {
	tw    *tar.Writer
	log   *slog.Logger
	buf   []byte
	links map[devIno]string // first name written for each multiply-linked inode
	skip  func(name string) bool
	clamp time.Time
}

func (wr *writer) writeHeader(hdr *tar.Header) error {
	if !wr.clamp.IsZero() && hdr.ModTime.After(wr.clamp) {
		hdr.ModTime = wr.clamp
	}
	return wr.tw.WriteHeader(hdr)
}

// Write writes dir (an overlay upper directory or an unpacked layer) to w
// as an OCI layer tar: a whiteout (0/0 character device) becomes an empty
// ".wh.NAME" file, an opaque directory its entry plus "DIR/.wh..wh..opq".
//
// The output depends only on the tree, so two runs give identical bytes:
// depth first with each directory's names in byte order (parents before
// children), PAX format, numeric owners without names, mtimes truncated to
// whole seconds (as Docker and BuildKit write them; sub-second times would
// add a PAX record to nearly every entry), no atime or ctime. Files linked
// more than once inside dir become hardlinks to the first name written.
// xattrs user.* (but not user.overlay.*) and security.capability go into
// SCHILY.xattr records. Names starting ".wh." cannot be represented (they
// would read back as whiteouts) and are left out with a warning, as are
// sockets.
func Write(w io.Writer, dir string, opts WriteOptions) error {
	wr := &writer{tw: tar.NewWriter(w), log: opts.Logger, buf: make([]byte, copyBufSize), links: map[devIno]string{}, skip: opts.Skip, clamp: opts.Clamp}
	if wr.log == nil {
		wr.log = slog.New(slog.DiscardHandler)
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("writing layer from %s: %w", dir, err)
	}
	defer unix.Close(fd)
	if err := wr.root(fd, opts.Root); err != nil {
		return fmt.Errorf("writing layer from %s: %w", dir, err)
	}
	if err := wr.dir(fd, ""); err != nil {
		return fmt.Errorf("writing layer from %s: %w", dir, err)
	}
	if err := wr.tw.Close(); err != nil {
		return fmt.Errorf("writing layer from %s: %w", dir, err)
	}
	return nil
}

func (wr *writer) root(fd int, withEntry bool) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if withEntry {
		hdr := header("./", &st, tar.TypeDir)
		if err := wr.addXattrs(fd, hdr); err != nil {
			return err
		}
		if err := wr.writeHeader(hdr); err != nil {
			return err
		}
	}
	return wr.opaque(fd, "", &st)
}

// dir writes the entries below the open directory fd, whose tar name
// (with trailing slash, "" for the root) is prefix.
func (wr *writer) dir(fd int, prefix string) error {
	names, err := readNames(fd)
	if err != nil {
		return fmt.Errorf("listing %q: %w", prefix, err)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := wr.entry(fd, n, prefix+n); err != nil {
			return err
		}
	}
	return nil
}

func (wr *writer) entry(pfd int, base, name string) error {
	if wr.skip != nil && wr.skip(name) {
		return nil
	}
	if strings.HasPrefix(base, overlay.WhiteoutPrefix) {
		wr.log.Warn("leaving out a file whose name reads as a whiteout marker", "path", name)
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("inspecting %q: %w", name, err)
	}
	typ := st.Mode & unix.S_IFMT
	switch typ {
	case unix.S_IFDIR:
		return wr.subdir(pfd, base, name, &st)
	case unix.S_IFREG:
		return wr.file(pfd, base, name, &st)
	case unix.S_IFCHR:
		if st.Rdev == 0 {
			return wr.whiteout(name, base, &st)
		}
	case unix.S_IFSOCK:
		wr.log.Warn("leaving out a socket, which tar cannot hold", "path", name)
		return nil
	}
	if link, ok := wr.seen(&st, name); ok {
		return wr.hardlink(name, link, &st)
	}
	hdr := header(name, &st, tar.TypeFifo)
	switch typ {
	case unix.S_IFLNK:
		target, err := readlinkat(pfd, base)
		if err != nil {
			return fmt.Errorf("reading symlink %q: %w", name, err)
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if typ == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	}
	return wr.writeHeader(hdr)
}

func (wr *writer) subdir(pfd int, base, name string, st *unix.Stat_t) error {
	fd, err := unix.Openat(pfd, base, openDir, 0)
	if err != nil {
		return fmt.Errorf("opening %q: %w", name, err)
	}
	defer unix.Close(fd)
	hdr := header(name+"/", st, tar.TypeDir)
	if err := wr.addXattrs(fd, hdr); err != nil {
		return fmt.Errorf("reading xattrs of %q: %w", name, err)
	}
	if err := wr.writeHeader(hdr); err != nil {
		return err
	}
	if err := wr.opaque(fd, name+"/", st); err != nil {
		return err
	}
	return wr.dir(fd, name+"/")
}

// opaque writes DIR/.wh..wh..opq right after an opaque directory's entry,
// so it precedes the directory's own children.
func (wr *writer) opaque(fd int, prefix string, st *unix.Stat_t) error {
	v := make([]byte, 8)
	n, err := unix.Fgetxattr(fd, overlay.OpaqueXattr, v)
	if err != nil || string(v[:n]) != overlay.OpaqueValue {
		return nil // absent, unsupported, or overlay's "x" (has whiteouts, not opaque)
	}
	hdr := header(prefix+overlay.OpaqueMarker, st, tar.TypeReg)
	return wr.writeHeader(hdr)
}

func (wr *writer) whiteout(name, base string, st *unix.Stat_t) error {
	// Never a hardlink: overlayfs shares one whiteout inode among many names.
	hdr := header(strings.TrimSuffix(name, base)+overlay.WhiteoutPrefix+base, st, tar.TypeReg)
	return wr.writeHeader(hdr)
}

func (wr *writer) file(pfd int, base, name string, st *unix.Stat_t) error {
	if link, ok := wr.seen(st, name); ok {
		return wr.hardlink(name, link, st)
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return fmt.Errorf("opening %q: %w", name, err)
	}
	defer unix.Close(fd)
	// The tree may be a running container's: make sure what we opened is
	// what we listed, not something swapped in since.
	var fst unix.Stat_t
	if err := unix.Fstat(fd, &fst); err != nil {
		return fmt.Errorf("inspecting %q: %w", name, err)
	}
	if fst.Dev != st.Dev || fst.Ino != st.Ino {
		return fmt.Errorf("%q changed while the layer was being written", name)
	}
	hdr := header(name, &fst, tar.TypeReg)
	hdr.Size = fst.Size
	if err := wr.addXattrs(fd, hdr); err != nil {
		return fmt.Errorf("reading xattrs of %q: %w", name, err)
	}
	if err := wr.writeHeader(hdr); err != nil {
		return err
	}
	n, err := io.CopyBuffer(wr.tw, onlyReader{io.LimitReader(fdReader(fd), fst.Size)}, wr.buf)
	if err != nil {
		return fmt.Errorf("reading %q: %w", name, err)
	}
	if n != fst.Size {
		return fmt.Errorf("%q shrank from %d to %d bytes while the layer was being written", name, fst.Size, n)
	}
	return nil
}

// seen records the first name of an inode with several links and returns
// it for the later ones.
func (wr *writer) seen(st *unix.Stat_t, name string) (string, bool) {
	if st.Nlink < 2 {
		return "", false
	}
	k := devIno{uint64(st.Dev), st.Ino}
	if first, ok := wr.links[k]; ok {
		return first, true
	}
	wr.links[k] = name
	return "", false
}

func (wr *writer) hardlink(name, target string, st *unix.Stat_t) error {
	hdr := header(name, st, tar.TypeLink)
	hdr.Linkname = target
	return wr.writeHeader(hdr)
}

func header(name string, st *unix.Stat_t, typ byte) *tar.Header {
	return &tar.Header{
		Typeflag: typ,
		Name:     name,
		Mode:     int64(st.Mode & 0o7777),
		Uid:      int(st.Uid),
		Gid:      int(st.Gid),
		ModTime:  time.Unix(st.Mtim.Sec, 0),
		Format:   tar.FormatPAX,
	}
}

// addXattrs copies the xattrs a layer keeps from an open file or
// directory. A recorded owner (ownerxattr, single-id mode) becomes the
// entry's owner instead of an xattr.
func (wr *writer) addXattrs(fd int, hdr *tar.Header) error {
	names, err := listXattrs(fd)
	if err != nil {
		return err
	}
	for _, x := range names {
		if !xattrKept(x) {
			continue
		}
		v, err := getXattr(fd, x)
		if errors.Is(err, unix.ENODATA) {
			continue // removed since listing
		}
		if err != nil {
			return fmt.Errorf("reading xattr %s: %w", x, err)
		}
		if x == ownerxattr.Name {
			uid, gid, err := ownerxattr.Decode(v)
			if err != nil {
				wr.log.Warn("recorded owner ignored", "entry", hdr.Name, "err", err)
				continue
			}
			hdr.Uid, hdr.Gid = int(uid), int(gid)
			continue
		}
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords[paxXattrPrefix+x] = string(v)
	}
	return nil
}

func listXattrs(fd int) ([]string, error) {
	buf := make([]byte, 1024)
	for {
		n, err := unix.Flistxattr(fd, buf)
		switch err {
		case nil:
			var names []string
			for x := range bytes.SplitSeq(buf[:n], []byte{0}) {
				if len(x) > 0 {
					names = append(names, string(x))
				}
			}
			return names, nil
		case unix.ERANGE:
			buf = make([]byte, len(buf)*4)
		case unix.ENOTSUP:
			return nil, nil
		default:
			return nil, fmt.Errorf("listing xattrs: %w", err)
		}
	}
}

func getXattr(fd int, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Fgetxattr(fd, name, buf)
		if err == unix.ERANGE {
			buf = make([]byte, len(buf)*8)
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

func readlinkat(pfd int, base string) (string, error) {
	for size := 256; ; size *= 4 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(pfd, base, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

type fdReader int

func (r fdReader) Read(p []byte) (int, error) {
	for {
		n, err := unix.Read(int(r), p)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if n == 0 && len(p) > 0 {
			return 0, io.EOF
		}
		return n, nil
	}
}
