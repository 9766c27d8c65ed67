package layer

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"nook/internal/compression"
	"nook/internal/overlay"
)

// ApplyOptions tune Apply.
type ApplyOptions struct {
	Chown  bool         // set owners from the tar (uid/gid as in the headers)
	Logger *slog.Logger // nil discards
}

// ApplyResult says what Apply did beyond the plain extraction.
type ApplyResult struct {
	Size     int64    // bytes of the uncompressed tar consumed, trailing padding included
	Skipped  []string // entries (or parts of them) left out, each "NAME: reason"
	SingleID bool     // the user namespace maps one id: owners collapsed to 0
}

// copyBufSize is large because file data is the bulk of a layer and every
// read of the tar stream costs a trip through the decompressor.
const copyBufSize = 1 << 20

type applier struct {
	opts ApplyOptions
	log  *slog.Logger
	dirs *dirs
	buf  []byte
	src  *countingReader
	data readErrs // the current entry's data
	res  ApplyResult
	// fixups holds directory metadata applied after all entries, since
	// creating children changes a directory's mtime and a read-only mode
	// would stop us creating them.
	fixups map[string]dirMeta
}

type dirMeta struct {
	mode         uint32
	atime, mtime time.Time
}

// Apply reads an uncompressed layer tar from r and materialises it under
// dir (which exists, and is empty or holds a partial copy of the same
// layer) in overlayfs userxattr format. Later entries replace earlier ones
// of the same name; a directory onto a directory merges. The whole layer
// is refused with an error wrapping ErrUnsafe for any entry that would
// reach outside dir or forge overlay metadata, and ErrCorrupt for input
// that is not a complete tar. On error dir holds a partial layer the caller
// removes. Nothing is synced: see SyncTree.
func Apply(r io.Reader, dir string, opts ApplyOptions) (ApplyResult, error) {
	a := &applier{opts: opts, log: opts.Logger, fixups: map[string]dirMeta{}}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	d, err := openDirs(dir)
	if err != nil {
		return a.res, err
	}
	defer d.close()
	a.dirs = d
	a.buf = make([]byte, copyBufSize)

	src := &countingReader{r: r}
	a.src = src
	tr := tar.NewReader(src)
	prev := ""
	for {
		hdr, err := tr.Next()
		if errors.Is(err, tar.ErrInsecurePath) && hdr != nil {
			err = nil // GODEBUG=tarinsecurepath=0: we judge names ourselves, below
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			a.res.Size = src.n
			return a.res, readError(src, err, prev)
		}
		a.data = readErrs{r: tr}
		if err := a.entry(hdr); err != nil {
			a.res.Size = src.n
			return a.res, err
		}
		prev = hdr.Name
	}
	if src.n == 0 {
		return a.res, fmt.Errorf("%w: empty input is not a tar", ErrCorrupt)
	}
	if err := a.fixDirs(); err != nil {
		return a.res, err
	}
	// Consume the padding after the end-of-archive marker so a caller
	// hashing the stream sees all of it.
	if _, err := io.CopyBuffer(io.Discard, onlyReader{src}, a.buf); err != nil {
		return a.res, fmt.Errorf("reading layer after its end marker: %w", err)
	}
	a.res.Size = src.n
	a.log.Debug("applied layer", "dir", dir, "bytes", src.n, "skipped", len(a.res.Skipped))
	return a.res, nil
}

// readError tells a failing source (passed through) from a malformed tar
// (ErrCorrupt, saying where).
func readError(src *countingReader, err error, prev string) error {
	if src.err != nil && src.err != io.EOF && errors.Is(err, src.err) {
		return fmt.Errorf("reading layer: %w", err)
	}
	where := "at its first entry"
	if prev != "" {
		where = fmt.Sprintf("after entry %q", prev)
	}
	hint := ""
	if prev == "" {
		if k, _, _ := compression.Detect(bytes.NewReader(src.head)); k != compression.None {
			hint = fmt.Sprintf(" (input is %s-compressed)", k)
		}
	}
	return fmt.Errorf("%w: %s, byte %d%s: %w", ErrCorrupt, where, src.n, hint, err)
}

// cleanName validates a tar name and returns it relative to the layer
// root, "." for the root itself.
func cleanName(name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("%w: %q contains NUL", ErrUnsafe, name)
	}
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("%w: %q is absolute", ErrUnsafe, name)
	}
	c := path.Clean(name)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("%w: %q escapes the layer", ErrUnsafe, name)
	}
	return c, nil
}

func (a *applier) skip(name, reason string) {
	a.res.Skipped = append(a.res.Skipped, name+": "+reason)
	a.log.Debug("skipping layer entry", "entry", name, "reason", reason)
}

// entry materialises one tar entry.
func (a *applier) entry(hdr *tar.Header) error {
	name, err := cleanName(hdr.Name)
	if err != nil {
		return fmt.Errorf("entry: %w", err)
	}
	if aufsMeta(name) {
		a.skip(name, "aufs metadata")
		return nil
	}
	base := path.Base(name)
	if strings.HasPrefix(base, overlay.WhiteoutPrefix) {
		return a.whiteout(name, base)
	}
	xattrs, err := a.xattrs(hdr, name)
	if err != nil {
		return err
	}
	if name == "." {
		if hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("%w: root entry %q is not a directory", ErrCorrupt, hdr.Name)
		}
		return a.dirMetadata(".", hdr, xattrs)
	}
	switch hdr.Typeflag {
	case tar.TypeReg, '\x00', tar.TypeCont, tar.TypeGNUSparse:
		return a.file(name, hdr, xattrs)
	case tar.TypeDir:
		return a.dir(name, hdr, xattrs)
	case tar.TypeSymlink:
		return a.symlink(name, hdr, xattrs)
	case tar.TypeLink:
		return a.hardlink(name, hdr)
	case tar.TypeFifo:
		return a.fifo(name, hdr, xattrs)
	case tar.TypeChar, tar.TypeBlock:
		a.skip(name, "device node (cannot be created unprivileged)")
	case tar.TypeXGlobalHeader:
		// Global PAX records carry nothing a layer needs.
	default:
		a.skip(name, fmt.Sprintf("unsupported tar entry type %q", hdr.Typeflag))
	}
	return nil
}

// whiteout turns ".wh..wh..opq" into an opaque directory and ".wh.NAME"
// into overlay's whiteout, a 0/0 character device.
func (a *applier) whiteout(name, base string) error {
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
	return a.create(pfd, joinRel(parent, target), target, func() error {
		return unix.Mknodat(pfd, target, unix.S_IFCHR, 0)
	})
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
	if hdr.Size > 0 {
		var w io.Writer = fdWriter(fd)
		sparse := isSparse(hdr)
		if sparse {
			w = &holeWriter{fd: fd}
		}
		if _, err := io.CopyBuffer(w, &a.data, a.buf); err != nil {
			return a.dataError(name, err)
		}
		if sparse {
			if err := unix.Ftruncate(fd, hdr.Size); err != nil {
				return fmt.Errorf("sizing sparse file %q: %w", name, err)
			}
		}
	}
	if err := a.chown(name, hdr.Uid, hdr.Gid, func(u, g int) error { return unix.Fchown(fd, u, g) }); err != nil {
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
	if err := a.setXattrs(fd, name, xattrs); err != nil {
		return err
	}
	a.fixups[name] = dirMeta{mode: perm(hdr), atime: atime(hdr), mtime: hdr.ModTime}
	return nil
}

// fixDirs sets directory modes and times, deepest first so a read-only
// parent never blocks reaching its children. A directory replaced since its
// entry is passed over.
func (a *applier) fixDirs() error {
	names := make([]string, 0, len(a.fixups))
	for n := range a.fixups {
		names = append(names, n)
	}
	slices.Sort(names)
	slices.Reverse(names)
	for _, name := range names {
		m := a.fixups[name]
		fd, err := a.dirs.open(name, false)
		if err != nil {
			a.log.Debug("directory gone before its metadata was set", "dir", name, "err", err)
			continue
		}
		if err := unix.Fchmod(fd, m.mode); err != nil {
			return fmt.Errorf("setting mode of %q: %w", name, err)
		}
		if err := unix.UtimesNanoAt(fd, ".", timespecs(m.atime, m.mtime), 0); err != nil {
			return fmt.Errorf("setting times of %q: %w", name, err)
		}
	}
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

func (a *applier) times(pfd int, base, name string, hdr *tar.Header) error {
	if err := unix.UtimesNanoAt(pfd, base, timespecs(atime(hdr), hdr.ModTime), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("setting times of %q: %w", name, err)
	}
	return nil
}

func perm(hdr *tar.Header) uint32 { return uint32(hdr.Mode) & 0o7777 }

// atime falls back to mtime: most tars carry no atime, and "now" would
// make two unpacks of one layer differ.
func atime(hdr *tar.Header) time.Time {
	if hdr.AccessTime.IsZero() {
		return hdr.ModTime
	}
	return hdr.AccessTime
}

func timespecs(atime, mtime time.Time) []unix.Timespec {
	return []unix.Timespec{
		{Sec: atime.Unix(), Nsec: int64(atime.Nanosecond())},
		{Sec: mtime.Unix(), Nsec: int64(mtime.Nanosecond())},
	}
}

// fdWriter writes to a raw descriptor. It is deliberately only a Writer, so
// io.CopyBuffer uses our buffer instead of a ReaderFrom's small one.
type fdWriter int

func (w fdWriter) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := unix.Write(int(w), p[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		n += m
	}
	return n, nil
}

// isSparse reports a GNU sparse entry (old GNU type or PAX GNU.sparse.*).
// archive/tar expands its holes into zeros; a few hundred bytes of tar can
// describe terabytes of them.
func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

// holeWriter writes a sparse file's data, skipping all-zero blocks so the
// expanded holes stay holes on disk instead of filling it.
type holeWriter struct {
	fd   int
	off  int64
	zero [4096]byte
}

func (h *holeWriter) Write(p []byte) (int, error) {
	for done := 0; done < len(p); {
		blk := p[done:min(done+len(h.zero), len(p))]
		if !bytes.Equal(blk, h.zero[:len(blk)]) {
			for w := 0; w < len(blk); {
				n, err := unix.Pwrite(h.fd, blk[w:], h.off+int64(w))
				if err == unix.EINTR {
					continue
				}
				if err != nil {
					return done + w, err
				}
				w += n
			}
		}
		done += len(blk)
		h.off += int64(len(blk))
	}
	return len(p), nil
}

// countingReader counts what the tar reader consumed, keeps the first bytes
// (to say "this is gzip" when the tar header is garbage) and the source's
// own error, to tell a failing source from a malformed tar.
type countingReader struct {
	r    io.Reader
	n    int64
	head []byte
	err  error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if len(c.head) < 8 {
		c.head = append(c.head, p[:min(n, 8-len(c.head))]...)
	}
	c.n += int64(n)
	if err != nil {
		c.err = err
	}
	return n, err
}

// readErrs remembers whether a copy failed reading (a truncated entry) or
// writing (the disk).
type readErrs struct {
	r   io.Reader
	err error
}

func (e *readErrs) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

// onlyReader hides WriterTo so io.CopyBuffer uses the buffer it is given.
type onlyReader struct{ io.Reader }
