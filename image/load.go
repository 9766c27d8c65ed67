package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"nook/internal/atomicfile"
)

// ErrVerify marks content that does not match what describes it: a blob
// whose digest or size differs from its descriptor, a layer whose diff id
// differs from the config's.
var ErrVerify = errors.New("verification failed")

// LoadImage is one image of an archive, as the archive's reader found it.
// The store checks everything again while it reads: the reader's job is
// finding members, not vouching for them.
type LoadImage struct {
	Names []string // tags to give it (full or familiar); none leaves it untagged
	// Manifest is the raw manifest (OCI or Docker schema 2). A legacy
	// Docker archive has none: the store then writes an OCI manifest for
	// the layers as read.
	Manifest          []byte
	ManifestMediaType string
	Config            []byte // raw config
	Layers            []LoadLayer
	Source            string // where the archive describes the image, for messages
}

// LoadLayer is one layer blob of an archive.
type LoadLayer struct {
	Desc   ocispec.Descriptor // from the manifest; no digest in a legacy archive
	Member string             // the archive member holding it, for messages
	Open   func() (io.ReadCloser, error)
}

// AddFunc hands one image of an archive to a load transaction, which reads
// and verifies its blobs into temporary space at once.
type AddFunc func(LoadImage) error

// LoadOptions tune Load.
type LoadOptions struct {
	Chown bool // keep the layers' owners (needs root, real or in a user namespace)
}

// Loaded is one image a load stored.
type Loaded struct {
	Image Image
	Names []string // full names the load gave it, sorted; none when untagged
}

// Renamed is a name a load took from another image.
type Renamed struct {
	Name  string        // full name
	OldID digest.Digest // the image that had it
}

// LoadResult is what a load did.
type LoadResult struct {
	Images   []Loaded
	Renamed  []Renamed // names moved here from other images, as Docker reports
	Skipped  []string  // layer entries not materialised, with the reason
	SingleID bool      // owners collapsed to root: the namespace maps one id only
}

// ScratchDir is the store's tmp/, where Spool and Scratch make their
// files: on the store's filesystem, so a rename takes one into blobs/.
func (s *Store) ScratchDir() string { return s.abs("tmp") }

// Spool opens a new unnamed file in the store's tmp/, reached through the
// store's descriptor, for a caller that needs room before it takes the
// lock (an archive spooled before Load). Unnamed, it is safe from the
// next writer clearing tmp/ and vanishes with its descriptor.
func (s *Store) Spool() (*os.File, error) {
	f, err := s.r.OpenFile("tmp", unix.O_TMPFILE|os.O_RDWR, 0o600)
	if err == nil || !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EINVAL) {
		return f, err
	}
	// A filesystem without unnamed files: name it, and unlink it at once.
	if f, err = s.Scratch("spool-"); err != nil {
		return nil, err
	}
	if err := s.RemoveScratch(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Scratch creates a new file in the store's tmp/, named prefix and a
// random suffix, through the store's descriptor: a compressed layer made
// by a push, which Record may later keep. The next writer clearing tmp/
// may remove its name (Record then copies from the open file).
func (s *Store) Scratch(prefix string) (*os.File, error) {
	for range 100 {
		f, err := s.r.OpenFile(path.Join("tmp", prefix+strconv.FormatUint(uint64(rand.Uint32()), 10)), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if !errors.Is(err, fs.ErrExist) {
			return f, err
		}
	}
	return nil, fmt.Errorf("making a file in %s: %w", s.ScratchDir(), fs.ErrExist)
}

// RemoveScratch removes the name of a file Scratch made, through the
// store's descriptor.
func (s *Store) RemoveScratch(f *os.File) error {
	name, ok := s.scratchName(f)
	if !ok {
		return fmt.Errorf("removing %s: %w", f.Name(), fs.ErrInvalid)
	}
	return s.r.Remove(name)
}

// scratchName is the name, relative to the store, of a file Scratch made.
func (s *Store) scratchName(f *os.File) (string, bool) {
	if filepath.Dir(f.Name()) != s.ScratchDir() {
		return "", false
	}
	return path.Join("tmp", filepath.Base(f.Name())), true
}

// Load runs fn in one transaction under the store's exclusive lock. fn
// calls add for each image of an archive; add verifies and stages the
// image's blobs and unpacked layers under tmp/. Only when fn returns nil
// are blobs, layers and, last, index entries committed; on any error the
// store is left as it was.
func (s *Store) Load(opts LoadOptions, fn func(add AddFunc) error) (_ LoadResult, err error) {
	defer func() { err = s.ExplainNoSpace(err) }()
	unlock, err := s.lock(true)
	if err != nil {
		return LoadResult{}, err
	}
	defer unlock()
	s.clearTmp()
	tmp, err := s.mkdirTemp("tmp", "load-")
	if err != nil {
		return LoadResult{}, fmt.Errorf("making temporary directory: %w", err)
	}
	defer s.r.RemoveAll(tmp)
	tx := &loadTx{s: s, tmp: tmp, opts: opts,
		blobs: map[digest.Digest]string{}, layers: map[digest.Digest]stagedLayer{},
		verified: map[string]digest.Digest{}, legacy: map[string]ocispec.Descriptor{}}
	if err := fn(tx.add); err != nil {
		return LoadResult{}, err
	}
	if len(tx.images) == 0 {
		return LoadResult{}, fmt.Errorf("%w: the archive holds no image", ErrNotFound)
	}
	if err := tx.commit(); err != nil {
		return LoadResult{}, err
	}
	return tx.result()
}

// loadTx is one load in progress: what it has verified and staged.
type loadTx struct {
	s      *Store
	tmp    string // relative to the store, as all names below
	opts   LoadOptions
	n      int                           // temporary names handed out
	blobs  map[digest.Digest]string      // staged blobs: temporary path, "" when the store has it
	layers map[digest.Digest]stagedLayer // staged unpacked layers by diff id
	images []stagedImage                 // in the order added
	res    LoadResult                    // warnings so far
	// verified maps a layer blob read in this load to its diff id, so a
	// blob shared by several images is read once and must agree each time.
	verified map[string]digest.Digest
	legacy   map[string]ocispec.Descriptor // legacy archive member → its computed descriptor
}

type stagedLayer struct {
	dir    string // temporary layer directory, "" when the store has it
	size   int64
	xattrs bool
}

type stagedImage struct {
	desc  ocispec.Descriptor
	id    digest.Digest // the config's digest
	names []string
}

func (tx *loadTx) tempPath(prefix string) string {
	tx.n++
	return path.Join(tx.tmp, fmt.Sprintf("%s-%d", prefix, tx.n))
}

// add verifies one image and stages everything it needs.
func (tx *loadTx) add(img LoadImage) error {
	names, err := loadNames(img)
	if err != nil {
		return err
	}
	var config ocispec.Image
	if err := json.Unmarshal(img.Config, &config); err != nil {
		return fmt.Errorf("%w: parsing config of %s: %v", ErrVerify, img.Source, err)
	}
	diffIDs := config.RootFS.DiffIDs
	if len(diffIDs) != len(img.Layers) {
		return fmt.Errorf("%w: %s: the config lists %d diff ids for %d layers", ErrVerify, img.Source, len(diffIDs), len(img.Layers))
	}
	configDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(img.Config), Size: int64(len(img.Config))}
	var manifest ocispec.Manifest
	if img.Manifest != nil {
		if err := checkManifest(img, configDesc.Digest, &manifest); err != nil {
			return err
		}
		configDesc = manifest.Config
	}
	descs := make([]ocispec.Descriptor, len(img.Layers))
	for i, l := range img.Layers {
		if err := checkDigest(diffIDs[i]); err != nil {
			return fmt.Errorf("%w: %s: diff id %d %q: %v", ErrVerify, img.Source, i, diffIDs[i], err)
		}
		if descs[i], err = tx.layer(l, diffIDs[i]); err != nil {
			return fmt.Errorf("layer %d of %s: %w", i+1, img.Source, err)
		}
	}
	raw, mediaType := img.Manifest, img.ManifestMediaType
	if raw == nil {
		manifest = ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: configDesc, Layers: descs}
		if raw, err = json.Marshal(manifest); err != nil {
			return err
		}
		mediaType = ocispec.MediaTypeImageManifest
	}
	if err := tx.stageBytes(img.Config); err != nil {
		return err
	}
	if err := tx.stageBytes(raw); err != nil {
		return err
	}
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(raw), Size: int64(len(raw))}
	tx.images = append(tx.images, stagedImage{desc: desc, id: configDesc.Digest, names: names})
	return nil
}

// loadNames parses an image's names; a digest cannot be a tag.
func loadNames(img LoadImage) ([]string, error) {
	var names []string
	for _, n := range img.Names {
		named, err := ParseName(n)
		if err != nil {
			return nil, fmt.Errorf("name of %s: %w", img.Source, err)
		}
		if named.Digest != "" {
			return nil, fmt.Errorf("%w: name %q of %s holds a digest", ErrInvalidReference, n, img.Source)
		}
		if !slices.Contains(names, named.String()) {
			names = append(names, named.String())
		}
	}
	slices.Sort(names)
	return names, nil
}

// checkManifest parses a raw manifest and checks it against the config
// and the layers the reader found.
func checkManifest(img LoadImage, configDigest digest.Digest, m *ocispec.Manifest) error {
	// The index may only point at what Images can read back, or one bad
	// archive would make the whole store unreadable.
	if img.ManifestMediaType != ocispec.MediaTypeImageManifest && img.ManifestMediaType != mediaTypeDockerManifest {
		return fmt.Errorf("%w: %s: media type %q is not an image manifest", ErrVerify, img.Source, img.ManifestMediaType)
	}
	if err := json.Unmarshal(img.Manifest, m); err != nil {
		return fmt.Errorf("%w: parsing manifest of %s: %v", ErrVerify, img.Source, err)
	}
	if m.MediaType != "" && m.MediaType != img.ManifestMediaType {
		return fmt.Errorf("%w: %s: manifest has media type %q, its descriptor says %q", ErrVerify, img.Source, m.MediaType, img.ManifestMediaType)
	}
	if m.Config.Digest != configDigest || m.Config.Size != int64(len(img.Config)) {
		return fmt.Errorf("%w: %s: config is %s (%d bytes), the manifest says %s (%d bytes)", ErrVerify, img.Source, configDigest, len(img.Config), m.Config.Digest, m.Config.Size)
	}
	if len(m.Layers) != len(img.Layers) {
		return fmt.Errorf("%w: %s: manifest lists %d layers, the archive gave %d", ErrVerify, img.Source, len(m.Layers), len(img.Layers))
	}
	for i, l := range m.Layers {
		if !layerMediaTypeKnown(l.MediaType) {
			return fmt.Errorf("%w: %s: layer %d has media type %q, which is not a filesystem layer", ErrVerify, img.Source, i+1, l.MediaType)
		}
		if l.Digest != img.Layers[i].Desc.Digest || l.Size != img.Layers[i].Desc.Size {
			return fmt.Errorf("%w: %s: layer %d differs from the manifest", ErrVerify, img.Source, i+1)
		}
	}
	return nil
}

// stageBytes stages a small verified blob (a config or a manifest).
func (tx *loadTx) stageBytes(b []byte) error {
	d := digest.FromBytes(b)
	if _, ok := tx.blobs[d]; ok {
		return nil
	}
	if tx.s.exists(blobName(d)) {
		tx.blobs[d] = ""
		return nil
	}
	p := tx.tempPath("blob")
	if err := atomicfile.WriteFileIn(tx.s.r, p, b, 0o644); err != nil {
		return fmt.Errorf("staging blob %s: %w", d, err)
	}
	tx.blobs[d] = p
	return nil
}
