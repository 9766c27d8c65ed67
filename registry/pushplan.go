package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"nook/image"
)

// planImage is one image to push with its blobs open: an open file stays
// readable after the store's lock is released, even if an rmi removes it.
type planImage struct {
	tags          []string      // full names to push it as, sorted
	local         digest.Digest // the manifest's digest in the store
	manifest      ocispec.Manifest
	raw           []byte // the manifest as stored, pushed as is when no layer changes
	config        []byte
	configSources []string // repositories known to hold the config
	layers        []planLayer
}

// planLayer is one layer: the bytes the store holds for it.
type planLayer struct {
	desc    ocispec.Descriptor // of the bytes in file
	diffID  digest.Digest      // names it in progress output, as Docker does
	file    *os.File
	plain   bool     // an uncompressed tar: compressed before it is sent
	sources []string // repositories (host/path) known to hold desc
}

func (pl *planImage) familiar() string { return image.FamiliarName(pl.tags[0]) }

// plan resolves what named pushes and opens it, under the store's shared
// lock; no network I/O happens here.
func (p *pusher) plan(named image.Ref) ([]*planImage, error) {
	var plans []*planImage
	err := p.s.Export([]string{named.String()}, func(imgs []image.ExportImage) error {
		for _, img := range imgs {
			var tags []string
			for _, t := range img.Tags {
				if r, err := image.ParseRef(t); err == nil && r.Name() == named.Name() && r.Tag != "" {
					tags = append(tags, t)
				}
			}
			if len(tags) == 0 {
				continue
			}
			pl, err := p.open(img.Image, tags)
			if err != nil {
				return err
			}
			plans = append(plans, pl)
		}
		return nil
	})
	// Docker's order: tag by tag.
	slices.SortFunc(plans, func(a, b *planImage) int { return strings.Compare(a.tags[0], b.tags[0]) })
	if err == nil && len(plans) == 0 {
		err = image.ErrNotFound
	}
	if errors.Is(err, image.ErrNotFound) {
		closePlans(plans)
		return nil, fmt.Errorf("%w: %s: nothing in the store has this name to push (`nook tag IMAGE %s` gives it one)", image.ErrNotFound, named.Familiar(), named.Familiar())
	}
	if err != nil {
		closePlans(plans)
		return nil, fmt.Errorf("pushing %s: %w", named.Familiar(), err)
	}
	return plans, nil
}

// open reads img's manifest and config and opens its layers, taking a
// remembered compressed form for a plain layer when the store has one.
func (p *pusher) open(img image.Image, tags []string) (pl *planImage, err error) {
	pl = &planImage{tags: tags, local: img.Digest, manifest: img.Manifest}
	defer func() {
		if err != nil {
			closePlans([]*planImage{pl})
		}
	}()
	if pl.raw, err = readSmallBlob(p.s, img.Digest); err != nil {
		return pl, err
	}
	if pl.config, err = readSmallBlob(p.s, img.ID); err != nil {
		return pl, err
	}
	pl.configSources = p.s.BlobSources(img.ID)
	for i, l := range img.Manifest.Layers {
		pln := planLayer{desc: l, diffID: l.Digest, plain: isPlainLayer(l.MediaType)}
		if i < len(img.Config.RootFS.DiffIDs) {
			pln.diffID = img.Config.RootFS.DiffIDs[i]
		}
		if pln.plain {
			if c, ok := p.s.Compressed(l.Digest, p.opts.Compression); ok {
				c.Annotations = l.Annotations
				pln.desc, pln.plain = c, false // a remembered compressed form
			}
		}
		if pln.file, err = p.s.OpenBlob(pln.desc.Digest); err != nil {
			return pl, fmt.Errorf("opening layer %s: %w", pln.desc.Digest, err)
		}
		pln.sources = p.s.BlobSources(pln.desc.Digest)
		pl.layers = append(pl.layers, pln)
	}
	return pl, nil
}

func readSmallBlob(s *image.Store, d digest.Digest) ([]byte, error) {
	f, err := s.OpenBlob(d)
	if err != nil {
		return nil, fmt.Errorf("reading blob %s: %w", d, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMetadata+1))
	if err != nil {
		return nil, fmt.Errorf("reading blob %s: %w", d, err)
	}
	if len(b) > maxMetadata {
		return nil, fmt.Errorf("blob %s: %w: over %d bytes", d, ErrUnsupported, maxMetadata)
	}
	if got := digest.FromBytes(b); got != d {
		return nil, fmt.Errorf("%w: blob %s has digest %s", image.ErrCorruptStore, d, got)
	}
	return b, nil
}

func closePlans(plans []*planImage) {
	for _, pl := range plans {
		for _, l := range pl.layers {
			if l.file != nil {
				l.file.Close()
			}
		}
	}
}

// Docker's layer media types (pull.go names its manifest and config).
const (
	mediaTypeDockerLayerTar  = "application/vnd.docker.image.rootfs.diff.tar"
	mediaTypeDockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

func isPlainLayer(mt string) bool {
	return mt == ocispec.MediaTypeImageLayer || mt == mediaTypeDockerLayerTar
}

// pushManifest is the manifest to push for pl with layers (the bytes that
// go to the registry): the stored one when nothing changed, else a copy
// with the new descriptors. Docker's schema 2 has gzip layers only: a
// zstd layer makes the manifest OCI's, config and all.
func pushManifest(pl *planImage, layers []ocispec.Descriptor) (ocispec.Descriptor, []byte, error) {
	m := pl.manifest
	mt := m.MediaType
	if mt == "" {
		mt = ocispec.MediaTypeImageManifest
	}
	changed := false
	for i, l := range layers {
		if l.Digest != m.Layers[i].Digest {
			changed = true
		}
	}
	if !changed {
		return ocispec.Descriptor{MediaType: mt, Digest: pl.local, Size: int64(len(pl.raw))}, pl.raw, nil
	}
	m.Layers = make([]ocispec.Descriptor, len(layers))
	copy(m.Layers, layers)
	if mt == mediaTypeDockerManifest {
		docker := true
		for _, l := range m.Layers {
			if l.MediaType == ocispec.MediaTypeImageLayerZstd {
				docker = false
			}
		}
		for i, l := range m.Layers {
			m.Layers[i].MediaType = layerType(l.MediaType, docker)
		}
		if !docker {
			mt, m.MediaType = ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageManifest
			if m.Config.MediaType == mediaTypeDockerConfig {
				m.Config.MediaType = ocispec.MediaTypeImageConfig
			}
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	return ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}, b, nil
}

// layerType names a layer type in a Docker manifest (docker) or an OCI one.
func layerType(mt string, docker bool) string {
	switch {
	case docker && mt == ocispec.MediaTypeImageLayerGzip:
		return mediaTypeDockerLayerGzip
	case docker && mt == ocispec.MediaTypeImageLayer:
		return mediaTypeDockerLayerTar
	case !docker && mt == mediaTypeDockerLayerGzip:
		return ocispec.MediaTypeImageLayerGzip
	case !docker && mt == mediaTypeDockerLayerTar:
		return ocispec.MediaTypeImageLayer
	}
	return mt
}

// blobsOf lists a manifest's config and layers.
func blobsOf(m ocispec.Manifest) []digest.Digest {
	out := []digest.Digest{m.Config.Digest}
	for _, l := range m.Layers {
		out = append(out, l.Digest)
	}
	return out
}
