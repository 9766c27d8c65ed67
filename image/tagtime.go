package image

import (
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// AnnotationTagTime on an index entry is when its name was given by tag,
// import or commit: Docker's LastTagTime, which a load or a pull leaves
// unset, as Docker's does.
const AnnotationTagTime = "io.nook.image.tag-time"

// stampTagTime records on name's entry that it was tagged at t.
func stampTagTime(idx *ocispec.Index, name string, t time.Time) {
	for i, d := range idx.Manifests {
		if d.Annotations[AnnotationRefName] == name {
			idx.Manifests[i].Annotations[AnnotationTagTime] = t.UTC().Format(time.RFC3339Nano)
		}
	}
}

// lastTagTime is the latest tag time of img's names, zero when none was
// tagged (or the index cannot be read: inspect shows Docker's zero then).
func (s *Store) lastTagTime(img Image) time.Time {
	var last time.Time
	idx, err := s.readIndex()
	if err != nil {
		return last
	}
	for _, d := range idx.Manifests {
		if d.Digest != img.Digest {
			continue
		}
		if t, err := time.Parse(time.RFC3339Nano, d.Annotations[AnnotationTagTime]); err == nil && t.After(last) {
			last = t
		}
	}
	return last
}
