// Package image is nook's image store: an OCI image layout (index.json,
// oci-layout, blobs/sha256/…) that skopeo and umoci read as oci:DIR:NAME,
// plus a cache of unpacked layers, one directory per diff id, in overlayfs's
// userxattr format so both nook's FUSE union and kernel overlayfs can stack
// them. References are resolved here, by one function every verb uses.
//
// The store changes only under an exclusive lock on root/lock, and only by
// write-temp → fsync → rename: blobs first, unpacked layers next, index.json
// last, so a reader never sees half an image and a killed writer leaves only
// debris under tmp/, which the next writer clears.
package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"nook/internal/atomicfile"
)

// Sentinel errors callers branch on.
var (
	ErrNotFound         = errors.New("no such image")
	ErrInvalidReference = errors.New("invalid reference format")
	ErrAmbiguous        = errors.New("ambiguous image id")
	ErrConflict         = errors.New("conflict")
	ErrCorruptStore     = errors.New("corrupt store")
)

// Annotation keys on index.json entries.
const (
	AnnotationRefName   = ocispec.AnnotationRefName // full normalized name, e.g. docker.io/library/busybox:latest
	AnnotationImageName = "io.containerd.image.name"
)

// Store is an image store rooted at a directory. It owns the one
// descriptor of that directory (r) that every file of the store is
// reached through: names below are relative to it and resolved without
// leaving it, so a symbolic link planted anywhere under the root (at
// blobs/sha256, layers, tmp, pulls) is refused rather than followed out,
// and swapping the root's path after Open changes nothing. The path
// (root) is kept for messages and for what must be handed to another
// process as a path (see LayerDir).
type Store struct {
	root string
	r    *os.Root
	log  *slog.Logger
}

// Options configure a Store.
type Options struct {
	Logger *slog.Logger // nil discards
}

// DefaultRoot is $XDG_DATA_HOME/nook, else ~/.local/share/nook.
func DefaultRoot() (string, error) {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "nook"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("finding the store: neither XDG_DATA_HOME nor HOME is set: %w", err)
	}
	return filepath.Join(home, ".local", "share", "nook"), nil
}

// Open opens the store at root, creating an empty layout if there is none.
func Open(root string, opts Options) (*Store, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r, err := openRoot(root)
	if err != nil {
		return nil, err
	}
	s := &Store{root: root, r: r, log: log}
	if _, err := r.Stat("index.json"); err == nil {
		return s, nil
	}
	if err := s.create(); err != nil {
		return nil, fmt.Errorf("creating store %s: %w", root, err)
	}
	return s, nil
}

// Root is the store's directory.
func (s *Store) Root() string { return s.root }

// abs is the path of name, relative to the store, for messages and for
// handing to other processes.
func (s *Store) abs(name string) string { return filepath.Join(s.root, name) }

func (s *Store) create() error {
	for _, d := range []string{"blobs/sha256", "layers", "tmp"} {
		if err := s.r.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	unlock, err := s.lock(true)
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := s.r.Stat("index.json"); err == nil {
		return nil // another process created it while we waited
	}
	layout, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	if err := atomicfile.WriteFileIn(s.r, ocispec.ImageLayoutFile, layout, 0o644); err != nil {
		return err
	}
	return s.writeIndex(ocispec.Index{})
}

// lock takes the store's lock, shared or exclusive, and returns its release.
func (s *Store) lock(exclusive bool) (func(), error) {
	f, err := s.r.OpenFile("lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening store lock: %w", err)
	}
	how := unix.LOCK_SH
	if exclusive {
		how = unix.LOCK_EX
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking store %s: %w", s.root, err)
	}
	return func() { f.Close() }, nil
}

// clearTmp removes what killed writers left. The caller holds the exclusive
// lock, so nothing under tmp/ is in use. Unpacked layers may hold files of
// subordinate ids, so this works fully only inside the user namespace.
func (s *Store) clearTmp() {
	for _, name := range s.listDir("tmp") {
		p := path.Join("tmp", name)
		if err := s.r.RemoveAll(p); err != nil {
			s.log.Warn("cannot remove leftover temporary data", "path", s.abs(p), "err", err)
		}
	}
}

func (s *Store) readIndex() (ocispec.Index, error) {
	var idx ocispec.Index
	b, err := s.r.ReadFile("index.json")
	if err != nil {
		return idx, fmt.Errorf("reading index of store %s: %w", s.root, err)
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return idx, fmt.Errorf("%w: parsing %s: %v", ErrCorruptStore, s.abs("index.json"), err)
	}
	return idx, nil
}

// writeIndex replaces index.json. Entries are sorted so the file is the same
// for the same content, whatever order the changes came in.
func (s *Store) writeIndex(idx ocispec.Index) error {
	idx.Versioned = specs.Versioned{SchemaVersion: 2}
	idx.MediaType = ocispec.MediaTypeImageIndex
	if idx.Manifests == nil {
		idx.Manifests = []ocispec.Descriptor{}
	}
	sort.SliceStable(idx.Manifests, func(i, j int) bool {
		a, b := idx.Manifests[i], idx.Manifests[j]
		if na, nb := a.Annotations[AnnotationRefName], b.Annotations[AnnotationRefName]; na != nb {
			return na < nb
		}
		return a.Digest < b.Digest
	})
	b, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	return atomicfile.WriteFileIn(s.r, "index.json", b, 0o644)
}

// blobName is where blob d lives, relative to the store.
func blobName(d digest.Digest) string {
	return path.Join("blobs", d.Algorithm().String(), d.Encoded())
}

// layerName is where the unpacked layer diffID lives, relative to the
// store.
func layerName(diffID digest.Digest) string { return path.Join("layers", diffID.Encoded()) }

// exists reports whether name, relative to the store, exists.
func (s *Store) exists(name string) bool {
	_, err := s.r.Lstat(name)
	return err == nil
}

// listDir lists the names in the store's directory name; none when it
// cannot be read.
func (s *Store) listDir(name string) []string {
	f, err := s.r.Open(name)
	if err != nil {
		return nil
	}
	defer f.Close()
	names, _ := f.Readdirnames(-1)
	sort.Strings(names)
	return names
}

// mkdirTemp makes a new directory in the store's directory dir, named
// prefix and a random suffix, and returns its name relative to the store.
func (s *Store) mkdirTemp(dir, prefix string) (string, error) {
	for range 100 {
		name := path.Join(dir, prefix+strconv.FormatUint(uint64(rand.Uint32()), 10))
		err := s.r.Mkdir(name, 0o700)
		if err == nil {
			return name, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", err
		}
	}
	return "", fmt.Errorf("making a directory in %s: %w", s.abs(dir), fs.ErrExist)
}

// readBlob reads a small blob (manifest, config) and checks its digest.
func (s *Store) readBlob(d digest.Digest) ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("%w: bad digest %q: %v", ErrCorruptStore, d, err)
	}
	b, err := s.r.ReadFile(blobName(d))
	if err != nil {
		return nil, fmt.Errorf("reading blob %s: %w", d, err)
	}
	if got := d.Algorithm().FromBytes(b); got != d {
		return nil, fmt.Errorf("%w: blob %s has digest %s", ErrCorruptStore, d, got)
	}
	return b, nil
}

// OpenBlob opens a blob for streaming; the caller verifies what it needs.
func (s *Store) OpenBlob(d digest.Digest) (*os.File, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("opening blob %q: %w", d, err)
	}
	return s.r.Open(blobName(d))
}

// writeBlob stores a small blob and returns its descriptor.
func (s *Store) writeBlob(mediaType string, b []byte) (ocispec.Descriptor, error) {
	d := digest.FromBytes(b)
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(b))}
	if s.exists(blobName(d)) {
		return desc, nil
	}
	if err := atomicfile.WriteFileIn(s.r, blobName(d), b, 0o644); err != nil {
		return desc, fmt.Errorf("storing blob %s: %w", d, err)
	}
	return desc, nil
}

// OpenDir opens the store's directory name (made first when create) as a
// root of its own, for a package that keeps its files in the store (the
// containers): reached through the store's descriptor, so never outside
// the store, and refused when name is a symbolic link, which the store
// never makes. A missing directory without create is fs.ErrNotExist.
func (s *Store) OpenDir(name string, create bool) (*os.Root, error) {
	if create {
		if err := s.r.MkdirAll(name, 0o700); err != nil {
			return nil, fmt.Errorf("creating %s: %w", s.abs(name), err)
		}
	}
	fi, err := s.r.Lstat(name)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", s.abs(name), err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%w: %s is not a directory (%s): remove it", ErrUnsafeRoot, s.abs(name), fi.Mode().Type())
	}
	r, err := s.r.OpenRoot(name)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", s.abs(name), err)
	}
	// The same directory as inspected: not one swapped in meanwhile.
	if got, err := r.Stat("."); err != nil || !os.SameFile(got, fi) {
		r.Close()
		return nil, fmt.Errorf("%w: %s changed while it was opened", ErrUnsafeRoot, s.abs(name))
	}
	return r, nil
}
