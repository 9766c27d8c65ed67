package image

import (
	"bufio"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"strconv"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"nook/image/layer"
	"nook/internal/atomicfile"
	"nook/internal/compression"
)

// ImportOptions describe `nook import`.
type ImportOptions struct {
	Name    string       // "" leaves the image untagged
	Message string       // history comment
	Changes ConfigChange // --change: applied to the config (nil: none)
	Source  string       // where the tar came from, for the history ("-" for stdin)
	Chown   bool         // keep the tar's owners (needs root, real or in a user namespace)
}

// ImportResult is what an import made.
type ImportResult struct {
	Image    Image
	Skipped  []string // entries not materialised, with the reason
	SingleID bool     // owners collapsed to root: the namespace maps one id only
}

// Import makes a one-layer image from a root filesystem tar (plain, gzip,
// zstd, bzip2 or xz, detected by content), as `docker import` does.
// On any error the store is left as it was.
func (s *Store) Import(r io.Reader, opts ImportOptions) (_ ImportResult, err error) {
	defer func() { err = s.ExplainNoSpace(err) }()
	var res ImportResult
	var named string
	if opts.Name != "" {
		n, err := ParseName(opts.Name)
		if err != nil {
			return res, err
		}
		named = n.String()
	}
	cfg := ocispec.ImageConfig{}
	if opts.Changes != nil {
		if err := opts.Changes(&cfg); err != nil {
			return res, err
		}
	}
	unlock, err := s.lock(true)
	if err != nil {
		return res, err
	}
	defer unlock()
	s.clearTmp()
	tmp, err := s.mkdirTemp("tmp", "import-")
	if err != nil {
		return res, fmt.Errorf("making temporary directory: %w", err)
	}
	defer s.r.RemoveAll(tmp)

	diffID, applied, err := s.ingestLayer(r, tmp, opts.Chown)
	if err != nil {
		return res, err
	}
	res.Skipped, res.SingleID = applied.Skipped, applied.SingleID

	comment := opts.Message
	if comment == "" {
		comment = "Imported from " + opts.Source
	}
	created := creationTime()
	config := ocispec.Image{
		Created:  &created,
		Platform: ocispec.Platform{Architecture: runtime.GOARCH, OS: "linux"},
		Config:   cfg,
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}},
		History:  []ocispec.History{{Created: &created, Comment: comment}},
	}
	layerDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: diffID, Size: applied.Size}
	desc, err := s.storeImage(config, []ocispec.Descriptor{layerDesc})
	if err != nil {
		return res, err
	}
	if err := s.addToIndex(desc, named); err != nil {
		return res, err
	}
	res.Image, err = s.imageByDigest(desc.Digest)
	return res, err
}

// creationTime honours SOURCE_DATE_EPOCH so builds can be reproducible.
func creationTime() time.Time {
	if v := os.Getenv("SOURCE_DATE_EPOCH"); v != "" {
		if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
			return time.Unix(secs, 0).UTC()
		}
	}
	return time.Now().UTC()
}

// ingestLayer streams a (possibly compressed) layer tar once: it stores the
// uncompressed tar as a blob, unpacks it, and hashes it for the diff id.
// Both land in the store by rename; tmp (relative to the store) holds
// everything until then.
func (s *Store) ingestLayer(r io.Reader, tmp string, chown bool) (digest.Digest, layer.ApplyResult, error) {
	var applied layer.ApplyResult
	dec, _, err := compression.Decompress(r)
	if err != nil {
		return "", applied, fmt.Errorf("reading layer: %w", err)
	}
	defer dec.Close()
	blobName := path.Join(tmp, "blob")
	blob, err := s.r.Create(blobName)
	if err != nil {
		return "", applied, fmt.Errorf("creating temporary blob: %w", err)
	}
	defer blob.Close()
	bw := bufio.NewWriterSize(blob, 1<<20)
	h := sha256.New()
	tee := io.TeeReader(dec, io.MultiWriter(bw, h))

	layerDir := path.Join(tmp, "layer")
	applied, err = s.applyLayer(tee, path.Join(layerDir, "diff"), chown)
	if err != nil {
		return "", applied, err
	}
	// The tar reader stops at the end-of-archive marker; the digest covers every byte.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return "", applied, fmt.Errorf("reading layer: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return "", applied, fmt.Errorf("writing blob: %w", err)
	}
	diffID := digest.NewDigest(digest.SHA256, h)
	st, err := blob.Stat()
	if err != nil {
		return "", applied, err
	}
	applied.Size = st.Size()
	if err := blob.Sync(); err != nil {
		return "", applied, fmt.Errorf("syncing blob %s: %w", diffID, err)
	}
	if err := s.commitBlob(blobName, diffID); err != nil {
		return "", applied, err
	}
	return diffID, applied, s.commitLayer(layerDir, layerMeta{DiffID: diffID, Size: applied.Size, Xattrs: applied.Xattrs})
}

// commitBlob renames a synced temporary file (named relative to the
// store) into blobs/ unless the blob is there already.
func (s *Store) commitBlob(tmp string, d digest.Digest) error {
	if s.exists(blobName(d)) {
		return nil
	}
	if err := s.r.Chmod(tmp, 0o644); err != nil {
		return err
	}
	if err := s.r.Rename(tmp, blobName(d)); err != nil {
		return fmt.Errorf("storing blob %s: %w", d, err)
	}
	return atomicfile.SyncDirIn(s.r, path.Dir(blobName(d)))
}

// applyLayer unpacks a layer tar into dir (relative to the store), made
// here, reached through the store's descriptor.
func (s *Store) applyLayer(tarStream io.Reader, dir string, chown bool) (layer.ApplyResult, error) {
	if err := s.r.MkdirAll(dir, 0o755); err != nil {
		return layer.ApplyResult{}, fmt.Errorf("creating layer directory: %w", err)
	}
	f, err := s.r.Open(dir)
	if err != nil {
		return layer.ApplyResult{}, fmt.Errorf("opening layer directory: %w", err)
	}
	defer f.Close()
	return layer.ApplyAt(tarStream, f, layer.ApplyOptions{Chown: chown, Logger: s.log})
}

// commitLayer makes an unpacked layer (layerDir, relative to the store)
// durable and renames it into layers/.
func (s *Store) commitLayer(layerDir string, meta layerMeta) error {
	diffID := meta.DiffID
	dest := layerName(diffID)
	if s.exists(dest) {
		return nil
	}
	b, _ := json.Marshal(meta)
	if err := s.r.WriteFile(path.Join(layerDir, "layer.json"), b, 0o644); err != nil {
		return fmt.Errorf("writing metadata of layer %s: %w", diffID, err)
	}
	if err := s.syncFS(); err != nil {
		return fmt.Errorf("syncing layer %s: %w", diffID, err)
	}
	if err := s.r.Rename(layerDir, dest); err != nil {
		return fmt.Errorf("storing layer %s: %w", diffID, err)
	}
	return atomicfile.SyncDirIn(s.r, "layers")
}

// syncFS flushes the store's filesystem: one syncfs is far cheaper than
// an fsync per unpacked file, and the rename that follows depends on it.
func (s *Store) syncFS() error {
	f, err := s.r.Open(".")
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}

// storeImage writes an image's config and manifest blobs.
func (s *Store) storeImage(config ocispec.Image, layers []ocispec.Descriptor) (ocispec.Descriptor, error) {
	cb, err := json.Marshal(config)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return s.storeImageConfig(cb, layers)
}

// storeImageConfig writes an image's config, given as JSON, and manifest blobs.
func (s *Store) storeImageConfig(cb []byte, layers []ocispec.Descriptor) (ocispec.Descriptor, error) {
	cdesc, err := s.writeBlob(ocispec.MediaTypeImageConfig, cb)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	m := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    cdesc,
		Layers:    layers,
	}
	mb, err := json.Marshal(m)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return s.writeBlob(ocispec.MediaTypeImageManifest, mb)
}

func (s *Store) imageByDigest(d digest.Digest) (Image, error) {
	imgs, err := s.Images()
	if err != nil {
		return Image{}, err
	}
	for _, img := range imgs {
		if img.Digest == d {
			return img, nil
		}
	}
	return Image{}, fmt.Errorf("%w: manifest %s", ErrNotFound, d)
}
