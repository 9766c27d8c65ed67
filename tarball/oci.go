package tarball

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"nook/image"
)

// readOCI reads an archive with an OCI image layout: index.json names the
// images, blobs/ holds them. Docker 25 adds manifest.json, whose RepoTags
// name an image whose index entry carries no usable name.
func (r *reader) readOCI() error {
	if r.a.has(ocispec.ImageLayoutFile) {
		b, err := r.a.readSmall(ocispec.ImageLayoutFile)
		if err != nil {
			return err
		}
		var l ocispec.ImageLayout
		if err := json.Unmarshal(b, &l); err != nil || l.Version != ocispec.ImageLayoutVersion {
			return fmt.Errorf("%w: %s: oci-layout is not version %s", ErrInvalid, r.a.name, ocispec.ImageLayoutVersion)
		}
	}
	b, err := r.a.readSmall("index.json")
	if err != nil {
		return err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return fmt.Errorf("%w: parsing index.json of %s: %v", ErrInvalid, r.a.name, err)
	}
	if len(idx.Manifests) == 0 {
		return fmt.Errorf("%w: index.json of %s lists no image", ErrInvalid, r.a.name)
	}
	legacy, err := r.legacyManifest()
	if err != nil {
		return err
	}
	var order []digest.Digest
	found := map[digest.Digest]*image.LoadImage{}
	for i, desc := range idx.Manifests {
		src := fmt.Sprintf("index.json entry %d (%s)", i+1, desc.Digest)
		img, err := r.resolve(desc, src, nil)
		if err != nil {
			return err
		}
		d := digest.FromBytes(img.Manifest)
		if prev, ok := found[d]; ok {
			prev.Names = append(prev.Names, img.Names...)
			continue
		}
		found[d] = &img
		order = append(order, d)
	}
	for _, d := range order {
		img := found[d]
		if len(img.Names) == 0 {
			img.Names = legacyTags(legacy, digest.FromBytes(img.Config))
		}
		if err := r.add(*img); err != nil {
			return err
		}
	}
	return nil
}

// entryNames reads an index entry's names: containerd's annotation holds
// the full name; the OCI one is often a bare tag (Docker 25 writes
// "latest"), which names no repository and is then ignored.
func entryNames(desc ocispec.Descriptor) []string {
	if n := desc.Annotations[image.AnnotationImageName]; n != "" {
		return []string{n}
	}
	if n := desc.Annotations[ocispec.AnnotationRefName]; strings.ContainsAny(n, "/:") {
		return []string{n}
	}
	return nil
}

// legacyTags are the RepoTags manifest.json gives the image with config d.
func legacyTags(entries []legacyEntry, d digest.Digest) []string {
	var tags []string
	for _, e := range entries {
		if key, err := memberKey(e.Config); err == nil {
			if cd, ok := digestFromName(key); ok && cd == d {
				tags = append(tags, e.RepoTags...)
			}
		}
	}
	return tags
}

// resolve follows a descriptor to one image manifest, picking the
// platform from indexes on the way. seen holds the indexes above, so an
// index that (in)directly lists itself is refused instead of followed.
func (r *reader) resolve(desc ocispec.Descriptor, src string, seen []digest.Digest) (image.LoadImage, error) {
	if slices.Contains(seen, desc.Digest) {
		return image.LoadImage{}, fmt.Errorf("%w: %s: index %s lists itself", ErrInvalid, src, desc.Digest)
	}
	if len(seen) >= maxDepth {
		return image.LoadImage{}, fmt.Errorf("%w: %s: indexes nest deeper than %d", ErrInvalid, src, maxDepth)
	}
	switch desc.MediaType {
	case ocispec.MediaTypeImageManifest, mediaTypeDockerManifest:
		img, err := r.manifest(desc, src, len(seen) > 0)
		img.Names = entryNames(desc)
		return img, err
	case ocispec.MediaTypeImageIndex, mediaTypeDockerManifestList:
	default:
		return image.LoadImage{}, fmt.Errorf("%w: %s: media type %q is neither an image manifest nor an index", ErrInvalid, src, desc.MediaType)
	}
	b, err := r.readBlob(desc)
	if err != nil {
		return image.LoadImage{}, fmt.Errorf("%s: %w", src, err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil || (idx.MediaType != "" && idx.MediaType != desc.MediaType) {
		return image.LoadImage{}, fmt.Errorf("%w: %s: blob %s is not an image index", ErrInvalid, src, desc.Digest)
	}
	var platforms []string
	for _, m := range idx.Manifests {
		if m.Platform == nil {
			continue
		}
		platforms = append(platforms, image.Platform{OS: m.Platform.OS, Architecture: m.Platform.Architecture, Variant: m.Platform.Variant}.String())
		if r.opts.Platform.MatchesDesc(m.Platform) {
			img, err := r.resolve(m, src+" → "+string(m.Digest), append(seen, desc.Digest))
			if len(img.Names) == 0 {
				img.Names = entryNames(desc)
			}
			return img, err
		}
	}
	return image.LoadImage{}, fmt.Errorf("%w: %s: index %s has no %s image (it has: %s)", ErrNoMatch, src, desc.Digest, r.opts.Platform, strings.Join(platforms, ", "))
}

// manifest reads an image manifest and its config, and lists its layers.
func (r *reader) manifest(desc ocispec.Descriptor, src string, fromIndex bool) (image.LoadImage, error) {
	raw, err := r.readBlob(desc)
	if err != nil {
		return image.LoadImage{}, fmt.Errorf("%s: %w", src, err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil || m.Config.Digest == "" || (m.MediaType != "" && m.MediaType != desc.MediaType) {
		return image.LoadImage{}, fmt.Errorf("%w: %s: blob %s is not an image manifest", ErrInvalid, src, desc.Digest)
	}
	config, err := r.readBlob(m.Config)
	if err != nil {
		return image.LoadImage{}, fmt.Errorf("config of %s: %w", src, err)
	}
	if r.opts.Explicit && !fromIndex {
		var c ocispec.Image
		if err := json.Unmarshal(config, &c); err != nil {
			return image.LoadImage{}, fmt.Errorf("%w: parsing config %s of %s: %v", ErrInvalid, m.Config.Digest, src, err)
		}
		if !r.opts.Platform.Matches(c.OS, c.Architecture, c.Variant) {
			return image.LoadImage{}, fmt.Errorf("%w: %s: image is %s/%s, not %s", ErrNoMatch, src, c.OS, c.Architecture, r.opts.Platform)
		}
	}
	img := image.LoadImage{Manifest: raw, ManifestMediaType: desc.MediaType, Config: config, Source: src}
	for i, l := range m.Layers {
		key, err := blobKey(l.Digest)
		if err != nil {
			return img, fmt.Errorf("layer %d of %s: %w", i+1, src, err)
		}
		if !r.a.has(key) {
			return img, fmt.Errorf("%w: blob %s (%s), layer %d of %s", ErrMissing, l.Digest, key, i+1, src)
		}
		img.Layers = append(img.Layers, image.LoadLayer{Desc: l, Member: key, Open: r.opener(key)})
	}
	return img, nil
}
