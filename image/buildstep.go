package image

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"errors"
	"io/fs"
	"path"
	"path/filepath"
	"strings"
	"time"

	"encoding/json"
	"fmt"
	"golang.org/x/sys/unix"
	"io"
	"os"
	"slices"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// AnnotationBuildCache marks an untagged index entry that a build keeps as
// the cached result of one step: the value is the step's cache key. Such
// entries are ordinary dangling images otherwise (prune removes them), but
// listings hide them as Docker hides intermediate images.
const AnnotationBuildCache = "org.nook.build.cache-key"

// BuildStep is one image a build stores: a parent's config and layers,
// optionally one new layer, under a cache key and names.
type BuildStep struct {
	// Config is the new config, with Docker's fields (healthcheck, onbuild,
	// shell) that OCI's lacks; RootFS and History without the new layer.
	Config  dockerspec.DockerOCIImage
	Layers  []ocispec.Descriptor // the parent's layers, bottom first
	History ocispec.History      // the new layer's history entry (with WriteLayer)
	// WriteLayer writes the new layer as an uncompressed tar; nil adds none.
	WriteLayer func(w io.Writer) error
	// FromDir, when set, is the directory WriteLayer writes: an overlay
	// upper directory in the store's layer format, on the store's
	// filesystem. It becomes the unpacked layer by rename, less the paths
	// NotInLayer names and with mtimes capped at Clamp, instead of
	// unpacking the tar into new files: a RUN that made 20,000 files
	// then costs no second 20,000 creations, nor their deletion.
	FromDir    string
	NotInLayer []string // relative to FromDir
	Clamp      time.Time
	CacheKey   string   // "" keeps no cache entry
	Names      []string // full names to point at the image
	// Listed keeps an untagged image in listings: a build's result, not
	// an intermediate step.
	Listed bool
}

// CommitBuildStep stores the step's layer (blob and unpacked directory in
// one pass), then its image, cache entry and names, all under one hold of
// the lock so no prune can take the new layer before an entry reaches it.
// Call it inside the user namespace so the layer keeps its owners.
func (s *Store) CommitBuildStep(st BuildStep) (Image, error) {
	var names []string
	for _, n := range st.Names {
		r, err := ParseName(n)
		if err != nil {
			return Image{}, err
		}
		names = append(names, r.String())
	}
	unlock, err := s.lock(true)
	if err != nil {
		return Image{}, err
	}
	defer unlock()
	cfg := st.Config
	cfg.RootFS.Type = "layers"
	cfg.RootFS.DiffIDs = slices.Clone(cfg.RootFS.DiffIDs)
	cfg.History = slices.Clone(cfg.History)
	layers := make([]ocispec.Descriptor, 0, len(st.Layers)+1)
	for _, l := range st.Layers {
		l.MediaType = ociLayerType(l.MediaType)
		layers = append(layers, l)
	}
	if st.WriteLayer != nil {
		s.clearTmp()
		tmp, err := s.mkdirTemp("tmp", "build-")
		if err != nil {
			return Image{}, fmt.Errorf("making temporary directory: %w", err)
		}
		defer s.r.RemoveAll(tmp)
		var diffID digest.Digest
		var size int64
		if st.FromDir != "" {
			diffID, size, err = s.ingestDir(st, tmp)
		} else {
			diffID, size, err = s.ingestWritten(st.WriteLayer, tmp)
		}
		if err != nil {
			return Image{}, err
		}
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, diffID)
		cfg.History = append(cfg.History, st.History)
		layers = append(layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: diffID, Size: size})
	}
	cb, err := json.Marshal(cfg)
	if err != nil {
		return Image{}, err
	}
	desc, err := s.storeImageConfig(cb, layers)
	if err != nil {
		return Image{}, err
	}
	idx, err := s.readIndex()
	if err != nil {
		return Image{}, err
	}
	if st.CacheKey != "" {
		idx.Manifests = slices.DeleteFunc(idx.Manifests, func(d ocispec.Descriptor) bool {
			return d.Annotations[AnnotationBuildCache] == st.CacheKey
		})
		entry := desc
		entry.Annotations = map[string]string{AnnotationBuildCache: st.CacheKey}
		idx.Manifests = append(idx.Manifests, entry)
	}
	for _, n := range names {
		setName(&idx, desc, n)
	}
	if len(names) == 0 && (st.CacheKey == "" || st.Listed) &&
		!slices.ContainsFunc(idx.Manifests, func(d ocispec.Descriptor) bool { return d.Digest == desc.Digest && len(d.Annotations) == 0 }) {
		idx.Manifests = append(idx.Manifests, desc)
	}
	if err := s.writeIndex(idx); err != nil {
		return Image{}, err
	}
	img, err := s.loadImage(desc)
	img.Names = names
	return img, err
}

// BuildCache returns the image a build cached under key, if the store
// still has it.
func (s *Store) BuildCache(key string) (Image, bool, error) {
	unlock, err := s.lock(false)
	if err != nil {
		return Image{}, false, err
	}
	defer unlock()
	idx, err := s.readIndex()
	if err != nil {
		return Image{}, false, err
	}
	for _, d := range idx.Manifests {
		if d.Annotations[AnnotationBuildCache] == key {
			img, err := s.loadImage(d)
			if err != nil {
				return Image{}, false, err
			}
			return img, true, nil
		}
	}
	return Image{}, false, nil
}

// HasLayer reports whether the store holds the unpacked layer diffID.
func (s *Store) HasLayer(diffID digest.Digest) bool {
	return s.exists(layerName(diffID))
}

// RawConfig returns an image's config as stored, with the fields of
// Docker's that Image.Config, which is OCI's, leaves out.
func (s *Store) RawConfig(img Image) ([]byte, error) { return s.readBlob(img.ID) }

// ingestDir stores the blob WriteLayer writes of st.FromDir and renames
// the directory in as its unpacked layer; tmp is a name under the store's
// root. Call it with the lock held.
func (s *Store) ingestDir(st BuildStep, tmp string) (digest.Digest, int64, error) {
	blobName := path.Join(tmp, "blob")
	blob, err := s.r.Create(blobName)
	if err != nil {
		return "", 0, fmt.Errorf("creating temporary blob: %w", err)
	}
	defer blob.Close()
	bw := bufio.NewWriterSize(blob, 1<<20)
	h := sha256.New()
	// The tar is read back as it goes by, to learn whether any entry
	// carries an xattr the union must then serve.
	pr, pw := io.Pipe()
	scanned := make(chan bool, 1)
	go func() {
		xattrs := false
		tr := tar.NewReader(pr)
		for {
			hdr, err := tr.Next()
			if err != nil {
				break
			}
			for k := range hdr.PAXRecords {
				if strings.HasPrefix(k, "SCHILY.xattr.") {
					xattrs = true
				}
			}
		}
		io.Copy(io.Discard, pr)
		scanned <- xattrs
	}()
	werr := st.WriteLayer(io.MultiWriter(bw, h, pw))
	pw.Close()
	xattrs := <-scanned
	if werr != nil {
		return "", 0, fmt.Errorf("writing the new layer: %w", werr)
	}
	if err := bw.Flush(); err != nil {
		return "", 0, fmt.Errorf("writing blob: %w", err)
	}
	diffID := digest.NewDigest(digest.SHA256, h)
	fi, err := blob.Stat()
	if err != nil {
		return "", 0, err
	}
	if err := blob.Sync(); err != nil {
		return "", 0, fmt.Errorf("syncing blob %s: %w", diffID, err)
	}
	if err := s.commitBlob(blobName, diffID); err != nil {
		return "", 0, err
	}
	if err := prepareDir(st.FromDir, st.NotInLayer, st.Clamp); err != nil {
		return "", 0, err
	}
	layerDir := path.Join(tmp, "layer")
	if err := s.r.Mkdir(layerDir, 0o755); err != nil {
		return "", 0, err
	}
	// FromDir is a container's upper directory, a path the container
	// manager holds (it is handed to the union by path as well).
	if err := os.Rename(st.FromDir, s.abs(path.Join(layerDir, "diff"))); err != nil {
		return "", 0, fmt.Errorf("moving %s into the store: %w", st.FromDir, err)
	}
	return diffID, fi.Size(), s.commitLayer(layerDir, layerMeta{DiffID: diffID, Size: fi.Size(), Xattrs: xattrs})
}

// prepareDir makes an upper directory what its tar says: without the
// paths left out of it, no mtime past clamp.
func prepareDir(dir string, drop []string, clamp time.Time) error {
	for _, p := range drop {
		if err := os.Remove(filepath.Join(dir, p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("preparing the new layer: %w", err)
		}
	}
	if clamp.IsZero() {
		return nil
	}
	ts := []unix.Timespec{unix.NsecToTimespec(clamp.UnixNano()), unix.NsecToTimespec(clamp.UnixNano())}
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if fi.ModTime().After(clamp) {
			if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return fmt.Errorf("clamping the time of %s: %w", p, err)
			}
		}
		return nil
	})
}
