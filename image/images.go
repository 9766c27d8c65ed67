package image

import (
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Image is one image of the store: a manifest, its config, and the names
// that point at it.
type Image struct {
	ID     digest.Digest      // the config's digest: Docker's image id
	Digest digest.Digest      // the manifest's digest
	Desc   ocispec.Descriptor // the manifest's descriptor, without annotations
	Names  []string           // full normalized names (docker.io/library/busybox:latest), sorted
	// RepoDigests maps a name to the digest a registry gave for it (see
	// AnnotationRepoDigest); names never pulled nor pushed have none.
	RepoDigests map[string]digest.Digest
	Manifest    ocispec.Manifest
	Config      ocispec.Image
	Size        int64 // bytes of the unpacked layers
	// BuildCache is set for an image a build keeps as a step's cached
	// result (see AnnotationBuildCache).
	BuildCache bool
}

// ShortID is the id as Docker prints it: 12 hex digits.
func (i Image) ShortID() string { return i.ID.Encoded()[:12] }

// Created is the config's creation time, zero when absent.
func (i Image) Created() time.Time {
	if i.Config.Created == nil {
		return time.Time{}
	}
	return *i.Config.Created
}

// Images lists the store's images, newest first.
func (s *Store) Images() ([]Image, error) {
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	return s.images(idx)
}

func (s *Store) images(idx ocispec.Index) ([]Image, error) {
	byDigest := map[digest.Digest]*Image{}
	var order []digest.Digest
	for _, desc := range idx.Manifests {
		img, ok := byDigest[desc.Digest]
		if !ok {
			loaded, err := s.loadImage(desc)
			if err != nil {
				return nil, err
			}
			img = &loaded
			byDigest[desc.Digest] = img
			order = append(order, desc.Digest)
		}
		// Intermediate only while every entry says so.
		img.BuildCache = desc.Annotations[AnnotationBuildCache] != "" && (!ok || img.BuildCache)
		if name := desc.Annotations[AnnotationRefName]; name != "" {
			img.Names = append(img.Names, name)
			img.addRepoDigest(name, desc)
		}
	}
	out := make([]Image, 0, len(order))
	for _, d := range order {
		sort.Strings(byDigest[d].Names)
		out = append(out, *byDigest[d])
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created().After(out[j].Created()) })
	return out, nil
}

func (i *Image) addRepoDigest(name string, desc ocispec.Descriptor) {
	if rd := digest.Digest(desc.Annotations[AnnotationRepoDigest]); rd != "" {
		if i.RepoDigests == nil {
			i.RepoDigests = map[string]digest.Digest{}
		}
		i.RepoDigests[name] = rd
	}
}

func (s *Store) loadImage(desc ocispec.Descriptor) (Image, error) {
	img := Image{Digest: desc.Digest}
	img.Desc = ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size, Platform: desc.Platform}
	if desc.MediaType != ocispec.MediaTypeImageManifest && desc.MediaType != mediaTypeDockerManifest {
		return img, fmt.Errorf("%w: index entry %s has media type %q, want an image manifest", ErrCorruptStore, desc.Digest, desc.MediaType)
	}
	b, err := s.readBlob(desc.Digest)
	if err != nil {
		return img, fmt.Errorf("reading manifest: %w", err)
	}
	if err := json.Unmarshal(b, &img.Manifest); err != nil {
		return img, fmt.Errorf("%w: parsing manifest %s: %v", ErrCorruptStore, desc.Digest, err)
	}
	img.ID = img.Manifest.Config.Digest
	cb, err := s.readBlob(img.ID)
	if err != nil {
		return img, fmt.Errorf("reading config of manifest %s: %w", desc.Digest, err)
	}
	if err := json.Unmarshal(cb, &img.Config); err != nil {
		return img, fmt.Errorf("%w: parsing config %s: %v", ErrCorruptStore, img.ID, err)
	}
	for i, l := range img.Manifest.Layers {
		img.Size += s.layerSize(img.Config.RootFS.DiffIDs, i, l)
	}
	return img, nil
}

// layerSize is the unpacked size of a layer when it is known, else its blob size.
func (s *Store) layerSize(diffIDs []digest.Digest, i int, l ocispec.Descriptor) int64 {
	if i < len(diffIDs) {
		if meta, err := s.readLayerMeta(diffIDs[i]); err == nil {
			return meta.Size
		}
	}
	return l.Size
}

const mediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"

// isIDPrefix reports whether ref can be an image id or a prefix of one: 1
// to 64 lowercase hex digits, "sha256:" before them or not. Plain code, not
// a regexp: {1,64} compiles to a large program, paid at every start of the
// binary (three per `nook run`) when it sits in a package variable.
func isIDPrefix(ref string) bool {
	hex := strings.TrimPrefix(ref, "sha256:")
	if hex == "" || len(hex) > 64 {
		return false
	}
	for _, c := range []byte(hex) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Resolve finds the image a user's reference names: a name (busybox,
// busybox:1.36, registry:5000/team/app@sha256:…), a full image id
// (sha256:… or 64 hex digits) or a unique prefix of one, as Docker prints.
func (s *Store) Resolve(ref string) (Image, error) {
	idx, err := s.readIndex()
	if err != nil {
		return Image{}, err
	}
	// A tagged name is found in the index alone and only its image is
	// read: a run's start must not grow with the images the store holds
	// (each costs a manifest, a config and a file per layer).
	if desc, names, ok := indexByName(idx, ref); ok {
		img, err := s.loadImage(desc)
		if err != nil {
			return Image{}, err
		}
		img.Names = names
		for _, d := range idx.Manifests {
			if n := d.Annotations[AnnotationRefName]; d.Digest == desc.Digest && n != "" {
				img.addRepoDigest(n, d)
			}
		}
		return img, nil
	}
	imgs, err := s.images(idx)
	if err != nil {
		return Image{}, err
	}
	img, _, err := resolveIn(imgs, ref)
	return img, err
}

// indexByName finds the index entry that ref names when resolveIn would
// take it for a tagged name (not an id), with every name of its manifest;
// ok is false when ref is something else or no entry has that name.
func indexByName(idx ocispec.Index, ref string) (desc ocispec.Descriptor, names []string, ok bool) {
	if isIDPrefix(ref) && (strings.HasPrefix(ref, "sha256:") || len(ref) == 64) {
		return desc, nil, false
	}
	named, err := ParseName(ref)
	if err != nil || named.Digest != "" {
		return desc, nil, false
	}
	want := named.String()
	for _, d := range idx.Manifests {
		if d.Annotations[AnnotationRefName] == want {
			desc, ok = d, true
			break
		}
	}
	if !ok {
		return desc, nil, false
	}
	for _, d := range idx.Manifests {
		if n := d.Annotations[AnnotationRefName]; d.Digest == desc.Digest && n != "" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return desc, names, true
}

// resolveIn also returns the stored name the reference matched, "" when it
// named the image by id or digest.
func resolveIn(imgs []Image, ref string) (Image, string, error) {
	if ref == "" {
		return Image{}, "", fmt.Errorf("%w: empty reference", ErrInvalidReference)
	}
	isID := isIDPrefix(ref)
	if isID && (strings.HasPrefix(ref, "sha256:") || len(ref) == 64) {
		img, err := byIDPrefix(imgs, ref)
		return img, "", err
	}
	named, perr := ParseName(ref)
	if perr == nil {
		for _, img := range imgs {
			if matchesName(img, named) {
				if named.Digest != "" {
					return img, "", nil
				}
				return img, named.String(), nil
			}
		}
	}
	if isID {
		img, err := byIDPrefix(imgs, ref)
		return img, "", err
	}
	if perr != nil {
		return Image{}, "", perr
	}
	return Image{}, "", fmt.Errorf("%w: %s", ErrNotFound, named.Familiar())
}

func matchesName(img Image, named Ref) bool {
	if named.Digest != "" {
		// A pull by digest names the image repo@digest; that digest
		// may be a multi-platform index's, not the manifest's.
		if slices.Contains(img.Names, named.Name()+"@"+named.Digest.String()) {
			return true
		}
		if img.Digest != named.Digest {
			return false
		}
		for _, n := range img.Names {
			if r, err := ParseRef(n); err == nil && r.Name() == named.Name() {
				return true
			}
		}
		return false
	}
	return slices.Contains(img.Names, named.String())
}

func byIDPrefix(imgs []Image, ref string) (Image, error) {
	prefix := strings.TrimPrefix(ref, "sha256:")
	var found []Image
	for _, img := range imgs {
		// Manifests of one config are one image (see removeOne).
		if strings.HasPrefix(img.ID.Encoded(), prefix) && !slices.ContainsFunc(found, func(f Image) bool { return f.ID == img.ID }) {
			found = append(found, img)
		}
	}
	switch len(found) {
	case 0:
		return Image{}, fmt.Errorf("%w: %s", ErrNotFound, ref)
	case 1:
		return found[0], nil
	}
	return Image{}, fmt.Errorf("%w: %s matches %d images", ErrAmbiguous, ref, len(found))
}

// ParseName parses a user's image name into its full normalized form,
// adding docker.io/library/ and :latest as Docker does.
func ParseName(s string) (Ref, error) {
	r, err := ParseRef(s)
	if err == nil && r.NameOnly() {
		r.Tag = "latest"
	}
	return r, err
}

// FamiliarRepoTag splits a stored name into Docker's REPOSITORY and TAG
// columns: docker.io/library/busybox:latest → busybox, latest.
func FamiliarRepoTag(name string) (repo, tag string) {
	r, err := ParseRef(name)
	if err != nil {
		return name, ""
	}
	return r.FamiliarName(), r.Tag
}

// FamiliarName is a stored name as Docker prints it: busybox:latest.
func FamiliarName(name string) string {
	r, err := ParseRef(name)
	if err != nil {
		return name
	}
	return r.Familiar()
}

// layerMeta is what the store keeps beside an unpacked layer.
type layerMeta struct {
	DiffID digest.Digest `json:"diffID"`
	Size   int64         `json:"size"`
	Xattrs bool          `json:"xattrs,omitempty"` // some file carries an xattr beyond the overlay markers
}

// LayerDir is the unpacked root of the layer with the given diff id. It is
// a path, not a descriptor, because it is handed to other processes (the
// union's FUSE server and the stages, in another mount namespace, or the
// kernel's overlayfs as a lowerdir option), which take only paths. What
// makes it safe to hand out is the store's own check at Open: the root
// and its top entries are the user's and writable by no one else, so no
// other user can redirect a path below them.
func (s *Store) LayerDir(diffID digest.Digest) string {
	return s.abs(path.Join(layerName(diffID), "diff"))
}

// LayersHaveXattrs reports whether any of the layers carries xattrs (beyond
// the overlay markers), as recorded when each was unpacked. A union over
// layers without any can leave xattrs off, which keeps `ls -l` from paying
// a FUSE round trip per file. An unreadable record counts as "has".
func (s *Store) LayersHaveXattrs(diffIDs []digest.Digest) bool {
	for _, d := range diffIDs {
		m, err := s.readLayerMeta(d)
		if err != nil || m.Xattrs {
			return true
		}
	}
	return false
}

func (s *Store) readLayerMeta(diffID digest.Digest) (layerMeta, error) {
	var m layerMeta
	b, err := s.r.ReadFile(path.Join(layerName(diffID), "layer.json"))
	if err != nil {
		return m, err
	}
	err = json.Unmarshal(b, &m)
	return m, err
}
