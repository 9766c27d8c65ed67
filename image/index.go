package image

import (
	"fmt"
	"path"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The index holds, for each manifest, one entry per name, or a single entry
// without a name for a dangling image (one whose last name moved away or
// was removed while a container still used it).

// addToIndex points name at desc (or records desc untagged when name is "").
func (s *Store) addToIndex(desc ocispec.Descriptor, name string) error {
	idx, err := s.readIndex()
	if err != nil {
		return err
	}
	setName(&idx, desc, name)
	if name != "" {
		stampTagTime(&idx, name, time.Now())
	}
	return s.writeIndex(idx)
}

func setName(idx *ocispec.Index, desc ocispec.Descriptor, name string) {
	desc.Annotations = nil
	if name == "" {
		if !slices.ContainsFunc(idx.Manifests, func(d ocispec.Descriptor) bool { return d.Digest == desc.Digest }) {
			idx.Manifests = append(idx.Manifests, desc)
		}
		return
	}
	removeName(idx, name)
	idx.Manifests = slices.DeleteFunc(idx.Manifests, func(d ocispec.Descriptor) bool {
		return d.Digest == desc.Digest && d.Annotations[AnnotationRefName] == "" && d.Annotations[AnnotationBuildCache] == ""
	})
	desc.Annotations = map[string]string{AnnotationRefName: name, AnnotationImageName: name}
	idx.Manifests = append(idx.Manifests, desc)
}

// removeName drops name from the index; an image left with no name stays, dangling.
func removeName(idx *ocispec.Index, name string) {
	var orphan []ocispec.Descriptor
	idx.Manifests = slices.DeleteFunc(idx.Manifests, func(d ocispec.Descriptor) bool {
		if d.Annotations[AnnotationRefName] != name {
			return false
		}
		orphan = append(orphan, d)
		return true
	})
	for _, d := range orphan {
		if !slices.ContainsFunc(idx.Manifests, func(e ocispec.Descriptor) bool { return e.Digest == d.Digest }) {
			d.Annotations = nil
			idx.Manifests = append(idx.Manifests, d)
		}
	}
}

// dropImage removes every entry of a manifest.
func dropImage(idx *ocispec.Index, d digest.Digest) {
	idx.Manifests = slices.DeleteFunc(idx.Manifests, func(e ocispec.Descriptor) bool { return e.Digest == d })
}

// Tag gives the image source refers to the name target, as `docker tag`.
func (s *Store) Tag(source, target string) error {
	named, err := ParseName(target)
	if err != nil {
		return err
	}
	if named.Digest != "" {
		return fmt.Errorf("%w: %q: a tag cannot name a digest", ErrInvalidReference, target)
	}
	unlock, err := s.lock(true)
	if err != nil {
		return err
	}
	defer unlock()
	img, err := s.Resolve(source)
	if err != nil {
		return err
	}
	return s.addToIndex(img.Desc, named.String())
}

// gc removes blobs and unpacked layers no index entry reaches. The caller
// holds the exclusive lock. A layer is first renamed into tmp/ so that a
// removal cut short never leaves a half layer under its real name.
func (s *Store) gc(idx ocispec.Index) (reclaimed int64, err error) {
	imgs, err := s.images(idx)
	if err != nil {
		return 0, err
	}
	blobs, layers := map[string]bool{}, map[string]bool{}
	for _, img := range imgs {
		blobs[img.Digest.Encoded()], blobs[img.ID.Encoded()] = true, true
		for _, l := range img.Manifest.Layers {
			blobs[l.Digest.Encoded()] = true
		}
		for _, d := range img.Config.RootFS.DiffIDs {
			layers[d.Encoded()] = true
		}
	}
	if err := s.keepDistribution(blobs); err != nil {
		return 0, err
	}
	for _, name := range s.listDir("layers") {
		if layers[name] {
			continue
		}
		if m, err := s.readLayerMeta(digest.NewDigestFromEncoded(digest.SHA256, name)); err == nil {
			reclaimed += m.Size
		}
		doomed := path.Join("tmp", "gc-"+name)
		if err := s.r.Rename(path.Join("layers", name), doomed); err != nil {
			return reclaimed, fmt.Errorf("removing layer %s: %w", name, err)
		}
		if err := s.r.RemoveAll(doomed); err != nil {
			return reclaimed, fmt.Errorf("removing layer %s: %w", name, err)
		}
	}
	for _, name := range s.listDir("blobs/sha256") {
		if blobs[name] {
			continue
		}
		p := path.Join("blobs", "sha256", name)
		if fi, err := s.r.Lstat(p); err == nil {
			reclaimed += fi.Size()
		}
		if err := s.r.Remove(p); err != nil {
			return reclaimed, fmt.Errorf("removing blob %s: %w", name, err)
		}
	}
	return reclaimed, nil
}
