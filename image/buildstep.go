package image

import (
	"encoding/json"
	"fmt"
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
		tmp, err := os.MkdirTemp(s.path("tmp"), "build-")
		if err != nil {
			return Image{}, fmt.Errorf("making temporary directory: %w", err)
		}
		defer os.RemoveAll(tmp)
		diffID, size, err := s.ingestWritten(st.WriteLayer, tmp)
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
	_, err := os.Stat(s.LayerDir(diffID))
	return err == nil
}

// RawConfig returns an image's config as stored, with the fields of
// Docker's that Image.Config, which is OCI's, leaves out.
func (s *Store) RawConfig(img Image) ([]byte, error) { return s.readBlob(img.ID) }
