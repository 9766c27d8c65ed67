package build

import (
	"slices"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"nook/image"
)

// cachedStep is a step's result found in the store.
type cachedStep struct {
	img    image.Image
	cfg    dockerspec.DockerOCIImage
	layers []ocispec.Descriptor
}

// cached looks a step's key up; an entry whose layers the store no longer
// has is a miss.
func (b *builder) cached(key string) (cachedStep, bool, error) {
	img, ok, err := b.s.BuildCache(key)
	if err != nil || !ok {
		return cachedStep{}, false, err
	}
	for _, d := range img.Config.RootFS.DiffIDs {
		if !b.s.HasLayer(d) {
			return cachedStep{}, false, nil
		}
	}
	cfg, err := b.rawConfig(img)
	if err != nil {
		return cachedStep{}, false, err
	}
	return cachedStep{img: img, cfg: cfg, layers: slices.Clone(img.Manifest.Layers)}, true, nil
}
