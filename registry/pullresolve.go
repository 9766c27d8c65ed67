package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/errdef"

	"nook/image"
	"nook/registry/hosts"
)

// resolved is an image found in a registry, manifest and config in hand.
type resolved struct {
	ep        hosts.Endpoint
	ref       image.Ref
	top       digest.Digest // what the reference resolved to
	raw       []byte        // the image manifest
	mediaType string
	manifest  ocispec.Manifest
	config    []byte
	diffIDs   []digest.Digest
	warnings  []string
}

// resolve fetches the manifest r names (through an index to the
// platform's) and the config, and refuses what nook cannot run.
func resolve(ctx context.Context, ep hosts.Endpoint, r image.Ref, platform image.Platform, explicit bool) (*resolved, error) {
	what := r.Familiar()
	reference := r.Tag
	if r.Digest != "" { // name:tag@digest: the digest decides, as in Docker
		reference = r.Digest.String()
	}
	desc, rc, err := ep.Repo.FetchReference(ctx, reference)
	if err != nil {
		return nil, explainFetch(err, what, ep.Host)
	}
	raw, err := readMetadata(rc, desc, what)
	if err != nil {
		return nil, err
	}
	if r.Digest != "" && desc.Digest != r.Digest {
		return nil, fmt.Errorf("%s: %w: the registry served %s", what, image.ErrVerify, desc.Digest)
	}
	m := &resolved{ep: ep, ref: r, top: desc.Digest, raw: raw, mediaType: desc.MediaType}
	if desc.MediaType == ocispec.MediaTypeImageIndex || desc.MediaType == mediaTypeDockerList {
		child, err := pickPlatform(raw, platform, what)
		if err != nil {
			return nil, err
		}
		rc, err := ep.Repo.Manifests().Fetch(ctx, child)
		if err != nil {
			return nil, explainFetch(err, what, ep.Host)
		}
		if m.raw, err = readMetadata(rc, child, what); err != nil {
			return nil, err
		}
		m.mediaType = child.MediaType
	}
	if err := m.checkManifest(what); err != nil {
		return nil, err
	}
	rc, err = ep.Repo.Blobs().Fetch(ctx, m.manifest.Config)
	if err != nil {
		return nil, explainFetch(err, what+" config", ep.Host)
	}
	if m.config, err = readMetadata(rc, m.manifest.Config, what+" config"); err != nil {
		return nil, err
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(m.config, &cfg); err != nil {
		return nil, fmt.Errorf("%s: %w: parsing config: %v", what, image.ErrVerify, err)
	}
	if cfg.OS != "" && cfg.OS != "linux" {
		return nil, fmt.Errorf("%s: %w: the image is for %s/%s, nook runs linux images", what, ErrUnsupported, cfg.OS, cfg.Architecture)
	}
	// An image that is not in an index says its platform in its config
	// alone: asked for another, Docker refuses it; by default it warns.
	if !platform.Matches(cfg.OS, cfg.Architecture, cfg.Variant) {
		got := image.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}
		if explicit {
			return nil, fmt.Errorf("%s: %w %s: the image is for %s", what, ErrPlatform, platform, got)
		}
		m.warnings = append(m.warnings, fmt.Sprintf("the image's platform (%s) is not this machine's (%s)", got, platform))
	}
	if len(cfg.RootFS.DiffIDs) != len(m.manifest.Layers) {
		return nil, fmt.Errorf("%s: %w: the config lists %d diff ids for %d layers", what, image.ErrVerify, len(cfg.RootFS.DiffIDs), len(m.manifest.Layers))
	}
	m.diffIDs = cfg.RootFS.DiffIDs
	return m, nil
}

// readMetadata reads a manifest or config, refusing one over 4 MiB before
// reading it and checking its digest and size after.
func readMetadata(rc io.ReadCloser, desc ocispec.Descriptor, what string) ([]byte, error) {
	defer rc.Close()
	if desc.Size > maxMetadata {
		return nil, fmt.Errorf("%s: %w: %s is %d bytes, over the 4 MiB a manifest or config may be", what, ErrUnsupported, desc.Digest, desc.Size)
	}
	b, err := content.ReadAll(rc, desc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: reading %s: %v", what, image.ErrVerify, desc.Digest, err)
	}
	return b, nil
}

// explainFetch is explain plus the size limit oras enforces itself.
func explainFetch(err error, what, host string) error {
	if errors.Is(err, errdef.ErrSizeExceedsLimit) {
		return fmt.Errorf("%s: %w: a manifest or config over 4 MiB", what, ErrUnsupported)
	}
	return explain(err, what, host)
}

// pickPlatform chooses the index entry for platform; an absent platform is
// one line listing those present.
func pickPlatform(raw []byte, platform image.Platform, what string) (ocispec.Descriptor, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("%s: %w: parsing index: %v", what, image.ErrVerify, err)
	}
	var have []string
	for _, d := range idx.Manifests {
		if d.Platform == nil || d.Platform.OS == "unknown" { // attestations
			continue
		}
		if platform.MatchesDesc(d.Platform) {
			return d, nil
		}
		p := image.Platform{OS: d.Platform.OS, Architecture: d.Platform.Architecture, Variant: d.Platform.Variant}.String()
		if !slices.Contains(have, p) {
			have = append(have, p)
		}
	}
	return ocispec.Descriptor{}, fmt.Errorf("%s: %w %s (the image has: %s)", what, ErrPlatform, platform, strings.Join(have, ", "))
}

// checkManifest parses the image manifest and refuses what nook cannot
// store or run: schema 1, foreign layers, media types it does not know.
func (m *resolved) checkManifest(what string) error {
	switch m.mediaType {
	case ocispec.MediaTypeImageManifest, mediaTypeDockerManifest:
	case mediaTypeSchema1, mediaTypeSchema1Signed:
		return fmt.Errorf("%s: %w: Docker image manifest schema 1 is deprecated and not supported; push the image again with a current client", what, ErrUnsupported)
	default:
		return fmt.Errorf("%s: %w: manifest media type %q is no image nook can run", what, ErrUnsupported, m.mediaType)
	}
	if err := json.Unmarshal(m.raw, &m.manifest); err != nil {
		return fmt.Errorf("%s: %w: parsing manifest: %v", what, image.ErrVerify, err)
	}
	switch c := m.manifest.Config.MediaType; c {
	case ocispec.MediaTypeImageConfig, mediaTypeDockerConfig:
	default:
		return fmt.Errorf("%s: %w: config media type %q is no image config (an artifact?)", what, ErrUnsupported, c)
	}
	for _, l := range m.manifest.Layers {
		switch l.MediaType {
		case ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerZstd, mediaTypeDockerLayer:
		default:
			if strings.Contains(l.MediaType, "foreign") || strings.Contains(l.MediaType, "nondistributable") {
				return fmt.Errorf("%s: %w: layer %s is a foreign layer (a Windows image?), which nook cannot fetch", what, ErrUnsupported, l.Digest)
			}
			return fmt.Errorf("%s: %w: layer media type %q", what, ErrUnsupported, l.MediaType)
		}
	}
	return nil
}
