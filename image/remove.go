package image

import (
	"fmt"
	"slices"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// RemoveOptions describe `nook rmi`.
type RemoveOptions struct {
	Force bool
	// InUse names a container that uses the image, "" when none does.
	// Containers live above this package, so the caller answers.
	InUse func(Image) string
}

// RemoveReport lists what a removal did, in Docker's words.
type RemoveReport struct {
	Untagged  []string        // familiar names
	Deleted   []digest.Digest // image ids
	Reclaimed int64
}

// Remove untags or deletes the image ref names, as `docker rmi` does: a
// name of an image with other names only loses that name; an image's last
// name, or its id, deletes the image, unless a container uses it.
func (s *Store) Remove(ref string, opts RemoveOptions) (RemoveReport, error) {
	return s.removeWith(func(idx *ocispec.Index, imgs []Image, rep *RemoveReport) error {
		return removeOne(idx, imgs, ref, opts, rep)
	})
}

func removeOne(idx *ocispec.Index, imgs []Image, ref string, opts RemoveOptions, rep *RemoveReport) error {
	img, name, err := resolveIn(imgs, ref)
	if err != nil {
		return err
	}
	user := ""
	if opts.InUse != nil {
		user = opts.InUse(img)
	}
	// An image is its config: another manifest of it (the image loaded
	// or pulled with its layers compressed otherwise) is the same image,
	// as Docker counts them, and its names are the image's names.
	var same []Image
	var names []string
	for _, m := range imgs {
		if m.ID == img.ID {
			same = append(same, m)
			names = append(names, m.Names...)
		}
	}
	switch {
	case name != "" && (len(names) > 1 || user != ""):
		if user != "" && !opts.Force {
			return fmt.Errorf("%w: unable to remove repository reference %q (must force) - container %s is using its referenced image %s", ErrConflict, ref, user, img.ShortID())
		}
		removeName(idx, name)
		if len(img.Names) == 1 && len(names) > 1 {
			// The manifest's last name: the image lives on under its others.
			dropImage(idx, img.Digest)
		}
		rep.Untagged = append(rep.Untagged, FamiliarName(name))
	case user != "":
		return fmt.Errorf("%w: unable to delete %s (cannot be forced) - image is being used by container %s", ErrConflict, img.ShortID(), user)
	case len(names) > 1 && !opts.Force:
		return fmt.Errorf("%w: unable to delete %s (must be forced) - image is referenced in multiple repositories", ErrConflict, img.ShortID())
	default:
		for _, n := range names {
			rep.Untagged = append(rep.Untagged, FamiliarName(n))
		}
		for _, m := range same {
			dropImage(idx, m.Digest)
		}
		rep.Deleted = append(rep.Deleted, img.ID)
	}
	return nil
}

// PruneOptions describe `nook image prune`.
type PruneOptions struct {
	All   bool // every image no container uses, not only dangling ones
	InUse func(Image) string
}

// Prune deletes dangling images (with All, every unused image) and the
// blobs failed or killed pulls left in the pull area.
func (s *Store) Prune(opts PruneOptions) (RemoveReport, error) {
	rep, err := s.prune(opts)
	if err == nil {
		rep.Reclaimed += s.clearPullBlobs(true)
	}
	return rep, err
}

func (s *Store) prune(opts PruneOptions) (RemoveReport, error) {
	return s.removeWith(func(idx *ocispec.Index, imgs []Image, rep *RemoveReport) error {
		for _, img := range imgs {
			if len(img.Names) > 0 && !opts.All {
				continue
			}
			if img.BuildCache && layersUsed(img, imgs, opts) {
				continue // a build step whose layers a kept image is made of
			}
			if opts.InUse != nil && opts.InUse(img) != "" {
				continue
			}
			for _, n := range img.Names {
				rep.Untagged = append(rep.Untagged, FamiliarName(n))
			}
			dropImage(idx, img.Digest)
			rep.Deleted = append(rep.Deleted, img.ID)
		}
		return nil
	})
}

// removeWith runs a change of the index under the lock, writes the index,
// then collects what no entry reaches any more.
func (s *Store) removeWith(change func(*ocispec.Index, []Image, *RemoveReport) error) (_ RemoveReport, err error) {
	defer func() { err = s.ExplainNoSpace(err) }()
	var rep RemoveReport
	unlock, err := s.lock(true)
	if err != nil {
		return rep, err
	}
	defer unlock()
	s.clearTmp()
	idx, err := s.readIndex()
	if err != nil {
		return rep, err
	}
	imgs, err := s.images(idx)
	if err != nil {
		return rep, err
	}
	if err := change(&idx, imgs, &rep); err != nil {
		return RemoveReport{}, err
	}
	if err := s.writeIndex(idx); err != nil {
		// Nothing happened: report nothing, or the caller would print
		// "Untagged:" and "Deleted:" for an image still there.
		return RemoveReport{}, err
	}
	// The index is committed: what it dropped is gone whatever gc says.
	rep.Reclaimed, err = s.gc(idx)
	return rep, err
}

// layersUsed says whether the layers of a named image that the prune
// keeps start with all of img's.
func layersUsed(img Image, imgs []Image, opts PruneOptions) bool {
	mine := img.Config.RootFS.DiffIDs
	for _, o := range imgs {
		kept := len(o.Names) > 0 && (!opts.All || (opts.InUse != nil && opts.InUse(o) != ""))
		if !kept || len(o.Config.RootFS.DiffIDs) < len(mine) {
			continue
		}
		if slices.Equal(o.Config.RootFS.DiffIDs[:len(mine)], mine) {
			return true
		}
	}
	return false
}
