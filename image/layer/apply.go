package layer

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"nook/internal/compression/magic"
	"nook/internal/overlay"
)

// ApplyOptions tune Apply.
type ApplyOptions struct {
	Chown  bool         // set owners from the tar (uid/gid as in the headers)
	Logger *slog.Logger // nil discards
	// Rename maps each entry's name (and a hardlink's target) before it is
	// judged; an entry mapped to "" is left out. nil keeps names.
	Rename func(string) string
}

// ApplyResult says what Apply did beyond the plain extraction.
type ApplyResult struct {
	Size     int64    // bytes of the uncompressed tar consumed, trailing padding included
	Skipped  []string // entries (or parts of them) left out, each "NAME: reason"
	SingleID bool     // the user namespace maps one id: owners collapsed to 0
	// Xattrs reports that some entry got an xattr (other than the overlay
	// markers), so a union over this layer must serve xattrs; without any,
	// it can turn them off and spare the kernel a round trip per file.
	Xattrs bool
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
	tr   *tar.Reader
	data readErrs // the current entry's data
	res  ApplyResult
	// fixups holds directory metadata applied after all entries, since
	// creating children changes a directory's mtime and a read-only mode
	// would stop us creating them.
	fixups map[string]dirMeta
	// skipped names entries left out, so a hardlink to one is left out
	// too rather than refused as pointing at nothing.
	skipped map[string]bool
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
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return ApplyResult{}, fmt.Errorf("opening layer directory %s: %w", dir, err)
	}
	return apply(r, &dirs{root: fd, curPath: ".", tail: -1}, dir, opts)
}

// ApplyAt is Apply into the open directory dir, for a caller that reached
// it through a descriptor (a store's os.Root) rather than a path another
// user could redirect. dir stays the caller's to close.
func ApplyAt(r io.Reader, dir *os.File, opts ApplyOptions) (ApplyResult, error) {
	fd, err := unix.FcntlInt(dir.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return ApplyResult{}, fmt.Errorf("opening layer directory %s: %w", dir.Name(), err)
	}
	return apply(r, &dirs{root: fd, curPath: ".", tail: -1}, dir.Name(), opts)
}

func apply(r io.Reader, d *dirs, dir string, opts ApplyOptions) (ApplyResult, error) {
	a := &applier{opts: opts, log: opts.Logger, fixups: map[string]dirMeta{}, skipped: map[string]bool{}}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	defer d.close()
	a.dirs = d
	a.buf = make([]byte, copyBufSize)

	src := &countingReader{r: r}
	a.src = src
	tr := tar.NewReader(src)
	a.tr = tr
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
		if a.opts.Rename != nil && !a.rename(hdr) {
			continue
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

// rename applies opts.Rename to hdr and reports whether the entry stays.
func (a *applier) rename(hdr *tar.Header) bool {
	hdr.Name = a.opts.Rename(hdr.Name)
	if hdr.Typeflag == tar.TypeLink {
		hdr.Linkname = a.opts.Rename(hdr.Linkname)
	}
	return hdr.Name != ""
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
		if k, _, _ := magic.Detect(bytes.NewReader(src.head)); k != magic.None {
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

// underWhiteout returns the first directory component of name that reads
// as a whiteout, or "". A whiteout is a mark, not a directory: an entry
// below one would store both the mark and a literal ".wh.NAME/" tree,
// which no union reads as the layer meant.
func underWhiteout(name string) string {
	dir := path.Dir(name)
	if !strings.Contains(dir, overlay.WhiteoutPrefix) {
		return ""
	}
	for comp := range strings.SplitSeq(dir, "/") {
		if strings.HasPrefix(comp, overlay.WhiteoutPrefix) {
			return comp
		}
	}
	return ""
}

// skip lists name as left out, "NAME: reason". The reason never holds
// ": " (made ", "), so the last ": " of a line ends the name however odd
// the name, and callers can count the entries left out for one reason.
func (a *applier) skip(name, reason string) {
	reason = strings.ReplaceAll(reason, ": ", ", ")
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
		a.skipped[name] = true
		return nil
	}
	if wh := underWhiteout(name); wh != "" {
		return fmt.Errorf("%w: entry %q lies under whiteout %q, which cannot have children", ErrUnsafe, name, wh)
	}
	base := path.Base(name)
	if strings.HasPrefix(base, overlay.WhiteoutPrefix) {
		return a.whiteout(name, base, hdr)
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
		a.skip(name, "device node (an unprivileged user cannot make one; a container's /dev has its own)")
		a.skipped[name] = true
	case tar.TypeXGlobalHeader:
		// Global PAX records carry nothing a layer needs.
	default:
		a.skip(name, fmt.Sprintf("unsupported tar entry type %q", hdr.Typeflag))
	}
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
