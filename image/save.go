package image

import (
	"fmt"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
)

// ExportImage is one image to save and the names to save it under.
type ExportImage struct {
	Image
	Tags []string // full names, sorted; none when it was named by id or digest
}

// Export resolves refs as `docker save` does and calls fn with the images,
// sorted by manifest digest, while holding the store's shared lock, so no
// rmi or prune removes a blob fn is reading. A name without tag or digest
// (busybox) means every tag of that repository; a tag, that name only; an
// id or a digest, the image without names.
func (s *Store) Export(refs []string, fn func([]ExportImage) error) error {
	if len(refs) == 0 {
		return fmt.Errorf("%w: no image to save", ErrInvalidReference)
	}
	unlock, err := s.lock(false)
	if err != nil {
		return err
	}
	defer unlock()
	imgs, err := s.Images()
	if err != nil {
		return err
	}
	byDigest := map[digest.Digest]*ExportImage{}
	addImage := func(img Image, tag string) {
		e, ok := byDigest[img.Digest]
		if !ok {
			e = &ExportImage{Image: img}
			byDigest[img.Digest] = e
		}
		if tag != "" && !slices.Contains(e.Tags, tag) {
			e.Tags = append(e.Tags, tag)
		}
	}
	for _, ref := range refs {
		if repo := nameOnly(ref); repo != "" {
			if n := addRepository(imgs, repo, addImage); n > 0 {
				continue
			}
		}
		img, name, err := resolveIn(imgs, ref)
		if err != nil {
			return err
		}
		addImage(img, name)
	}
	out := make([]ExportImage, 0, len(byDigest))
	for _, e := range byDigest {
		slices.Sort(e.Tags)
		out = append(out, *e)
	}
	slices.SortFunc(out, func(a, b ExportImage) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	return fn(out)
}

// nameOnly returns the repository a reference names when it has neither
// tag nor digest, else "". A short hex string may also be an id: the
// caller tries it as one when no repository matches.
func nameOnly(ref string) string {
	named, err := ParseRef(ref)
	if err != nil || !named.NameOnly() {
		return ""
	}
	return named.Name()
}

// addRepository adds every image with a tag in repo and counts the tags.
func addRepository(imgs []Image, repo string, add func(Image, string)) int {
	n := 0
	for _, img := range imgs {
		for _, name := range img.Names {
			if r, err := ParseRef(name); err == nil && r.Name() == repo {
				add(img, name)
				n++
			}
		}
	}
	return n
}
