// Package tarball reads and writes image archives: `docker save` output
// (the legacy manifest.json format and Docker 25's, which adds an OCI
// image layout), OCI archives and OCI layout directories; it writes the
// Docker 25 shape, deterministically, and the two others on request.
//
// Reading treats an archive as hostile. A member's name is only a key: it
// is cleaned, must stay inside the archive, and is never joined to a host
// path. Links, special files and duplicate names are refused; small JSON
// members have a size limit; manifests are followed with a cycle check and
// a depth limit. Blobs are handed to the store lazily, and the store
// verifies every digest, size and diff id as it streams them.
package tarball

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"nook/image"
)

// Sentinel errors callers branch on.
var (
	// ErrInvalid marks an archive that is malformed or hostile.
	ErrInvalid = errors.New("invalid image archive")
	// ErrMissing marks a member the archive refers to but does not hold.
	ErrMissing = errors.New("missing from the archive")
	// ErrNoMatch marks an index with no manifest for the wanted platform.
	ErrNoMatch = errors.New("no image for the platform")
)

// Media types of Docker's schema 2, which Docker and Podman archives use.
const (
	mediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// maxDepth bounds how deep indexes may nest.
const maxDepth = 4

// ReadOptions tune Read.
type ReadOptions struct {
	// Platform picks a manifest from an index; the zero value means this
	// machine's. Set Explicit to also refuse a lone manifest of another
	// platform.
	Platform image.Platform
	Explicit bool
	// Progress, when set, wraps each layer's stream as it is read, so a
	// caller can show how far the load is.
	Progress func(io.Reader) io.Reader
}

// Read finds every image of the archive and hands each to add: the
// images its index.json names when it has one (Docker 25, OCI), else
// those of a legacy manifest.json.
func Read(a *Archive, opts ReadOptions, add image.AddFunc) error {
	if opts.Platform.OS == "" {
		opts.Platform = image.HostPlatform()
	}
	r := &reader{a: a, opts: opts, add: add}
	if a.has("index.json") {
		return r.readOCI()
	}
	if a.has("manifest.json") {
		return r.readLegacy()
	}
	return fmt.Errorf("%w: %s holds neither index.json nor manifest.json", ErrInvalid, a.name)
}

type reader struct {
	a    *Archive
	opts ReadOptions
	add  image.AddFunc
}

// legacyEntry is one image of manifest.json.
type legacyEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

func (r *reader) legacyManifest() ([]legacyEntry, error) {
	if !r.a.has("manifest.json") {
		return nil, nil
	}
	b, err := r.a.readSmall("manifest.json")
	if err != nil {
		return nil, err
	}
	var entries []legacyEntry
	if err := json.Unmarshal(b, &entries); err != nil {
		return nil, fmt.Errorf("%w: parsing manifest.json of %s: %v", ErrInvalid, r.a.name, err)
	}
	return entries, nil
}

func (r *reader) readLegacy() error {
	entries, err := r.legacyManifest()
	if err != nil {
		return err
	}
	if len(entries) == 0 {
		return fmt.Errorf("%w: manifest.json of %s lists no image", ErrInvalid, r.a.name)
	}
	for i, e := range entries {
		src := fmt.Sprintf("manifest.json entry %d", i+1)
		key, err := memberKey(e.Config)
		if err != nil {
			return fmt.Errorf("%w: %s: config: %v", ErrInvalid, src, err)
		}
		config, err := r.a.readSmall(key)
		if err != nil {
			return fmt.Errorf("config of %s: %w", src, err)
		}
		// Docker names the config by its digest, as <hex>.json or
		// blobs/sha256/<hex>: when it does, the name must hold.
		if want, ok := digestFromName(key); ok && digest.FromBytes(config) != want {
			return fmt.Errorf("%w: config %s of %s has digest %s", image.ErrVerify, key, src, digest.FromBytes(config))
		}
		img := image.LoadImage{Names: e.RepoTags, Config: config, Source: src}
		for _, l := range e.Layers {
			lk, err := memberKey(l)
			if err != nil {
				return fmt.Errorf("%w: %s: layer: %v", ErrInvalid, src, err)
			}
			if !r.a.has(lk) {
				return fmt.Errorf("%w: layer %s of %s", ErrMissing, l, src)
			}
			img.Layers = append(img.Layers, image.LoadLayer{Member: lk, Open: r.opener(lk)})
		}
		if err := r.add(img); err != nil {
			return err
		}
	}
	return nil
}

// digestFromName recognises a member named after its sha256 digest.
func digestFromName(key string) (digest.Digest, bool) {
	base := key[strings.LastIndexByte(key, '/')+1:]
	base = strings.TrimSuffix(base, ".json")
	d := digest.NewDigestFromEncoded(digest.SHA256, base)
	if d.Validate() != nil {
		return "", false
	}
	return d, true
}

func (r *reader) opener(key string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) {
		rc, _, err := r.a.open(key)
		if err != nil || r.opts.Progress == nil {
			return rc, err
		}
		return struct {
			io.Reader
			io.Closer
		}{r.opts.Progress(rc), rc}, nil
	}
}

// blobKey is where an OCI layout keeps a blob.
func blobKey(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("%w: bad digest %q: %v", ErrInvalid, d, err)
	}
	return "blobs/" + d.Algorithm().String() + "/" + d.Encoded(), nil
}

// readBlob reads a small blob and checks it against its descriptor.
func (r *reader) readBlob(desc ocispec.Descriptor) ([]byte, error) {
	key, err := blobKey(desc.Digest)
	if err != nil {
		return nil, err
	}
	if !r.a.has(key) {
		return nil, fmt.Errorf("%w: blob %s (%s)", ErrMissing, desc.Digest, key)
	}
	if desc.Size > maxJSONSize {
		return nil, fmt.Errorf("%w: blob %s is %d bytes, more than the %d allowed for a %s", ErrInvalid, desc.Digest, desc.Size, maxJSONSize, desc.MediaType)
	}
	b, err := r.a.readSmall(key)
	if err != nil {
		return nil, err
	}
	if got := desc.Digest.Algorithm().FromBytes(b); got != desc.Digest || int64(len(b)) != desc.Size {
		return nil, fmt.Errorf("%w: blob %s (%s) is %s, %d bytes; its descriptor says %d bytes", image.ErrVerify, desc.Digest, key, got, len(b), desc.Size)
	}
	return b, nil
}
