package tarball

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"nook/internal/compression"
)

// Limits on an archive's own structure. Blobs may be as large as they
// like; what the reader keeps in memory may not.
const (
	maxMembers  = 1 << 17  // entries in one archive (a legacy one has three per layer)
	maxJSONSize = 16 << 20 // index.json, manifest.json, a manifest or a config
)

// Archive is an image archive opened for reading: a tar (plain or
// compressed as a whole) or an OCI layout directory. Members are found by
// key, a cleaned slash path that is never joined to a host path unchecked.
type Archive struct {
	name    string // for messages: the file, directory or "-"
	members map[string]member
	file    *os.File // the (possibly spooled) tar, nil for a directory
	root    *os.Root // the layout directory, nil for a tar
}

// member is where one regular file of the archive lives.
type member struct {
	offset, size int64
}

// Spool makes the file a stream is copied into: a new file without a
// name (or unlinked at once), so the copy is ours alone and vanishes with
// its descriptor whatever happens next. image.Store.Spool is one, in the
// store's tmp/.
type Spool func() (*os.File, error)

// Open reads an image archive from a stream: a tar, plain or compressed as
// a whole with gzip, zstd, bzip2 or xz. The stream is first decompressed
// into a file from spool, since the members an archive needs first
// (index.json, manifest.json) usually come last. name is used in
// messages.
func Open(r io.Reader, name string, spool Spool) (*Archive, error) {
	dec, _, err := compression.Decompress(r)
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %v", ErrInvalid, name, err)
	}
	defer dec.Close()
	f, err := spool()
	if err != nil {
		return nil, fmt.Errorf("spooling %s: %w", name, err)
	}
	if _, err := io.Copy(f, dec); err != nil {
		f.Close()
		// Writing the copy (a full disk) is not the archive's fault.
		if pe := (*fs.PathError)(nil); errors.As(err, &pe) && pe.Path == f.Name() {
			return nil, fmt.Errorf("spooling %s: %w", name, err)
		}
		return nil, fmt.Errorf("%w: reading %s: %v", ErrInvalid, name, err)
	}
	return index(f, name)
}

// OpenFile opens an archive file or an OCI layout directory by path. An
// uncompressed regular file is read in place; a pipe or a compressed file
// is spooled as Open does.
func OpenFile(p string, spool Spool) (*Archive, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", p, err)
	}
	if fi.IsDir() {
		return openDir(p)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", p, err)
	}
	if !fi.Mode().IsRegular() {
		defer f.Close()
		return Open(f, p, spool)
	}
	kind, _, err := compression.Detect(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	if kind == compression.None {
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			f.Close()
			return nil, fmt.Errorf("reading %s: %w", p, err)
		}
		return index(f, p)
	}
	defer f.Close()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	return Open(f, p, spool)
}

// Close releases the archive; a spooled copy is removed.
func (a *Archive) Close() error {
	if a.root != nil {
		return a.root.Close()
	}
	return a.file.Close()
}

// Size is the size of the (decompressed) tar, or -1 for a directory.
func (a *Archive) Size() int64 {
	if a.file == nil {
		return -1
	}
	fi, err := a.file.Stat()
	if err != nil {
		return -1
	}
	return fi.Size()
}

// Name is what the archive was opened from.
func (a *Archive) Name() string { return a.name }

// countingFile tracks the offset tar.Reader has reached, so the offset of
// each member's data is known after Next; Seek lets tar skip data.
type countingFile struct {
	f   *os.File
	pos int64
}

func (c *countingFile) Read(p []byte) (int, error) {
	n, err := c.f.Read(p)
	c.pos += int64(n)
	return n, err
}

func (c *countingFile) Seek(off int64, whence int) (int64, error) {
	n, err := c.f.Seek(off, whence)
	if err == nil {
		c.pos = n
	}
	return n, err
}

// index reads every header of the tar in f and records where each regular
// member's data lies. Links are aliases resolved here, once: a symbolic
// link (old `docker save` links repeated layers) must point at a regular
// member; hard links and special files are refused, as are duplicate
// names and names that leave the archive.
func index(f *os.File, name string) (*Archive, error) {
	a := &Archive{name: name, file: f, members: map[string]member{}}
	fail := func(err error) (*Archive, error) {
		f.Close()
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		return fail(fmt.Errorf("reading %s: %w", name, err))
	}
	cf := &countingFile{f: f}
	if _, err := cf.Seek(0, io.SeekStart); err != nil {
		return fail(fmt.Errorf("reading %s: %w", name, err))
	}
	tr := tar.NewReader(cf)
	links := map[string]string{}
	seen := map[string]bool{}
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(fmt.Errorf("%w: reading %s: %v", ErrInvalid, name, err))
		}
		if n >= maxMembers {
			return fail(fmt.Errorf("%w: %s has more than %d members", ErrInvalid, name, maxMembers))
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue
		}
		key, err := memberKey(hdr.Name)
		if err != nil {
			return fail(fmt.Errorf("%w: %s: %v", ErrInvalid, name, err))
		}
		if seen[key] && hdr.Typeflag != tar.TypeDir {
			return fail(fmt.Errorf("%w: %s: duplicate member %q", ErrInvalid, name, hdr.Name))
		}
		seen[key] = true
		switch hdr.Typeflag {
		case tar.TypeDir:
		case tar.TypeReg:
			if cf.pos+hdr.Size > st.Size() {
				return fail(fmt.Errorf("%w: %s is truncated: member %q ends past the end of the file", ErrInvalid, name, hdr.Name))
			}
			a.members[key] = member{offset: cf.pos, size: hdr.Size}
		case tar.TypeSymlink:
			target, err := linkKey(key, hdr.Linkname)
			if err != nil {
				return fail(fmt.Errorf("%w: %s: symbolic link %q: %v", ErrInvalid, name, hdr.Name, err))
			}
			links[key] = target
		default:
			return fail(fmt.Errorf("%w: %s: member %q has type %q; an image archive holds only files and directories", ErrInvalid, name, hdr.Name, string(hdr.Typeflag)))
		}
	}
	for key, target := range links {
		m, ok := a.members[target]
		if !ok {
			return fail(fmt.Errorf("%w: %s: symbolic link %q points at %q, which is not a file of the archive", ErrInvalid, name, key, target))
		}
		a.members[key] = m
	}
	return a, nil
}

// memberKey cleans an archive member's name into a key, refusing names
// that are absolute or climb out: they can only be mistakes or attacks.
func memberKey(name string) (string, error) {
	if name == "" || strings.HasPrefix(name, "/") || strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("bad member name %q", name)
	}
	key := path.Clean(name)
	if key == ".." || strings.HasPrefix(key, "../") {
		return "", fmt.Errorf("member name %q leaves the archive", name)
	}
	return key, nil
}

// linkKey resolves a symbolic link's target relative to the link's
// directory, as a key.
func linkKey(key, target string) (string, error) {
	if strings.HasPrefix(target, "/") {
		return "", fmt.Errorf("absolute target %q", target)
	}
	return memberKey(path.Join(path.Dir(key), target))
}

// has reports whether the archive holds a regular file under key.
func (a *Archive) has(key string) bool {
	if a.root != nil {
		fi, err := a.root.Stat(key)
		return err == nil && fi.Mode().IsRegular()
	}
	_, ok := a.members[key]
	return ok
}

// open opens the member under key and returns its size.
func (a *Archive) open(key string) (io.ReadCloser, int64, error) {
	if a.root != nil {
		f, err := a.root.Open(key)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: %s: %v", ErrMissing, key, err)
		}
		fi, err := f.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			f.Close()
			return nil, 0, fmt.Errorf("%w: %s is not a regular file", ErrMissing, key)
		}
		return f, fi.Size(), nil
	}
	m, ok := a.members[key]
	if !ok {
		return nil, 0, fmt.Errorf("%w: %s", ErrMissing, key)
	}
	return io.NopCloser(io.NewSectionReader(a.file, m.offset, m.size)), m.size, nil
}

// readSmall reads a small member whole.
func (a *Archive) readSmall(key string) ([]byte, error) {
	rc, size, err := a.open(key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if size > maxJSONSize {
		return nil, fmt.Errorf("%w: %s is %d bytes, more than the %d allowed", ErrInvalid, key, size, maxJSONSize)
	}
	b, err := io.ReadAll(io.LimitReader(rc, maxJSONSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", key, err)
	}
	return b, nil
}

// openDir opens an OCI layout directory. os.Root confines every open to
// the directory, symbolic links included.
func openDir(p string) (*Archive, error) {
	root, err := os.OpenRoot(p)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", p, err)
	}
	if _, err := root.Stat("index.json"); errors.Is(err, fs.ErrNotExist) {
		root.Close()
		return nil, fmt.Errorf("%w: directory %s has no index.json: not an OCI image layout", ErrInvalid, filepath.Clean(p))
	}
	return &Archive{name: p, root: root}, nil
}
