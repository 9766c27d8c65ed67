package image

import (
	"errors"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ConfigChange changes an image's runtime config: `import --change` and
// `commit --change`, whose Dockerfile instructions package build reads.
type ConfigChange func(*ocispec.ImageConfig) error

// CommitOptions describe `nook commit`: a new image from a parent image
// plus one layer.
type CommitOptions struct {
	Parent    string              // the parent image's id
	Config    ocispec.ImageConfig // the new image's runtime config
	Changes   ConfigChange        // --change: applied over Config (nil: none)
	Name      string              // "" leaves the image untagged
	Comment   string              // history comment (commit -m)
	Author    string              // commit -a
	CreatedBy string              // history created_by, e.g. the container's command
	// WriteLayer writes the new layer as an uncompressed tar.
	WriteLayer func(w io.Writer) error
}

// Commit stores the layer WriteLayer writes (blob and unpacked directory
// in one pass, as import does) and an image of the parent's layers, reused
// by diff id, plus that one. On any error the store is left as it was.
// Call it inside the user namespace so the layer keeps its owners.
func (s *Store) Commit(opts CommitOptions) (_ Image, err error) {
	defer func() { err = s.ExplainNoSpace(err) }()
	var named string
	if opts.Name != "" {
		n, err := ParseName(opts.Name)
		if err != nil {
			return Image{}, err
		}
		named = n.String()
	}
	cfg := opts.Config
	if opts.Changes != nil {
		if err := opts.Changes(&cfg); err != nil {
			return Image{}, err
		}
	}
	unlock, err := s.lock(true)
	if err != nil {
		return Image{}, err
	}
	defer unlock()
	// Resolved under the lock: the parent's layers cannot go meanwhile.
	parent, err := s.Resolve(opts.Parent)
	if err != nil {
		return Image{}, fmt.Errorf("parent image %s: %w", opts.Parent, err)
	}
	s.clearTmp()
	tmp, err := s.mkdirTemp("tmp", "commit-")
	if err != nil {
		return Image{}, fmt.Errorf("making temporary directory: %w", err)
	}
	defer s.r.RemoveAll(tmp)

	diffID, size, err := s.ingestWritten(opts.WriteLayer, tmp)
	if err != nil {
		return Image{}, err
	}
	created := creationTime()
	config := parent.Config
	config.Created = &created
	config.Author = opts.Author
	config.Config = cfg
	config.RootFS.DiffIDs = append(append([]digest.Digest{}, parent.Config.RootFS.DiffIDs...), diffID)
	config.History = append(append([]ocispec.History{}, parent.Config.History...), ocispec.History{
		Created: &created, CreatedBy: opts.CreatedBy, Author: opts.Author, Comment: opts.Comment,
	})
	var layers []ocispec.Descriptor
	for _, l := range parent.Manifest.Layers {
		l.MediaType = ociLayerType(l.MediaType)
		layers = append(layers, l)
	}
	layers = append(layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: diffID, Size: size})
	desc, err := s.storeImage(config, layers)
	if err != nil {
		return Image{}, err
	}
	if err := s.addToIndex(desc, named); err != nil {
		return Image{}, err
	}
	return s.imageByDigest(desc.Digest)
}

var errIngestStopped = errors.New("layer ingest stopped")

// ingestWritten runs write into a pipe that ingestLayer reads, so the
// layer is hashed, stored and unpacked in one pass without a spool file.
func (s *Store) ingestWritten(write func(io.Writer) error, tmp string) (digest.Digest, int64, error) {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(write(pw))
	}()
	diffID, applied, err := s.ingestLayer(pr, tmp, true)
	// Stop the writer whatever happened to the reader, and wait for it:
	// it must not read the container's files after Commit returns.
	pr.CloseWithError(errIngestStopped)
	<-done
	if err != nil {
		return "", 0, fmt.Errorf("storing the new layer: %w", err)
	}
	return diffID, applied.Size, nil
}

// ociLayerType names a Docker layer media type as OCI does, so the new
// manifest, which is OCI's, holds no Docker types.
func ociLayerType(mt string) string {
	switch mt {
	case "application/vnd.docker.image.rootfs.diff.tar.gzip":
		return ocispec.MediaTypeImageLayerGzip
	case "application/vnd.docker.image.rootfs.diff.tar":
		return ocispec.MediaTypeImageLayer
	}
	return mt
}
