package image

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PullImage is what a pull commits once every layer is in: the manifest
// and config exactly as the registry served them.
type PullImage struct {
	Name              string // full name to give it ("" leaves it untagged)
	RepoDigest        digest.Digest
	Manifest          []byte
	ManifestMediaType string
	Config            []byte
}

// PullResult is what Commit did.
type PullResult struct {
	Image    Image
	UpToDate bool // the name already pointed at this manifest
}

// Commit checks img against what the pull staged and, under the store's
// lock, moves blobs and layers in, then points the name at the manifest.
func (p *Pull) Commit(img PullImage) (PullResult, error) {
	var m ocispec.Manifest
	configDesc := ocispec.Descriptor{Digest: digest.FromBytes(img.Config), Size: int64(len(img.Config))}
	li := LoadImage{Manifest: img.Manifest, ManifestMediaType: img.ManifestMediaType, Config: img.Config, Source: img.Name}
	if err := json.Unmarshal(img.Manifest, &m); err != nil {
		return PullResult{}, fmt.Errorf("%w: parsing manifest of %s: %v", ErrVerify, img.Name, err)
	}
	for _, l := range m.Layers {
		li.Layers = append(li.Layers, LoadLayer{Desc: l})
	}
	if err := checkManifest(li, configDesc.Digest, &m); err != nil {
		return PullResult{}, err
	}
	var config ocispec.Image
	if err := json.Unmarshal(img.Config, &config); err != nil {
		return PullResult{}, fmt.Errorf("%w: parsing config of %s: %v", ErrVerify, img.Name, err)
	}
	if len(config.RootFS.DiffIDs) != len(m.Layers) {
		return PullResult{}, fmt.Errorf("%w: %s: the config lists %d diff ids for %d layers", ErrVerify, img.Name, len(config.RootFS.DiffIDs), len(m.Layers))
	}
	if err := p.settled(); err != nil {
		return PullResult{}, err
	}
	unlock, err := p.s.lock(true)
	if err != nil {
		return PullResult{}, err
	}
	defer unlock()
	if err := p.commitStaged(m, config.RootFS.DiffIDs); err != nil {
		return PullResult{}, err
	}
	if _, err := p.s.writeBlob(ocispec.MediaTypeImageConfig, img.Config); err != nil {
		return PullResult{}, err
	}
	desc, err := p.s.writeBlob(img.ManifestMediaType, img.Manifest)
	if err != nil {
		return PullResult{}, err
	}
	idx, err := p.s.readIndex()
	if err != nil {
		return PullResult{}, err
	}
	res := PullResult{UpToDate: img.Name != "" && slices.ContainsFunc(idx.Manifests, func(d ocispec.Descriptor) bool {
		return d.Digest == desc.Digest && d.Annotations[AnnotationRefName] == img.Name
	})}
	setName(&idx, desc, img.Name)
	if img.RepoDigest != "" {
		for i := range idx.Manifests {
			if e := &idx.Manifests[i]; e.Digest == desc.Digest && e.Annotations[AnnotationRefName] == img.Name {
				if e.Annotations == nil {
					e.Annotations = map[string]string{}
				}
				e.Annotations[AnnotationRepoDigest] = img.RepoDigest.String()
			}
		}
	}
	if err := p.s.writeIndex(idx); err != nil {
		return PullResult{}, err
	}
	res.Image, err = p.s.imageByDigest(desc.Digest)
	return res, err
}

// commitStaged renames the staged blobs and layers of manifest m into the
// store and checks that every one it needs is there (a concurrent rmi may
// have removed one the pull found present).
func (p *Pull) commitStaged(m ocispec.Manifest, diffIDs []digest.Digest) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, l := range m.Layers {
		if name := p.blobs[l.Digest]; name != "" {
			if err := p.s.commitBlob(name, l.Digest); err != nil {
				return err
			}
		}
		if sl, ok := p.layers[diffIDs[i]]; ok {
			if err := p.s.commitLayer(sl.dir, layerMeta{DiffID: diffIDs[i], Size: sl.size, Xattrs: sl.xattrs}); err != nil {
				return err
			}
		}
		if !p.s.exists(blobName(l.Digest)) || !p.s.exists(layerName(diffIDs[i])) {
			return fmt.Errorf("layer %s went missing from the store during the pull: pull again", l.Digest)
		}
	}
	return nil
}
