package registry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"nook/image"
	"nook/registry/hosts"
)

// A pull, step by step:
//
//	resolve     GET manifest (tag or digest; mirrors first)  → index or manifest
//	index       pick the platform's manifest, GET it by digest
//	config      GET blob (≤ 4 MiB, digest checked)
//	layers      per layer, N at once, outside the store's lock:
//	              have blob and layer → nothing; have blob → unpack it;
//	              else GET blob (Range from a partial) → hash, decompress,
//	              hash, unpack as it arrives (image.Pull.Layer)
//	commit      the store's lock: blobs, layers, then the name (image.Pull.Commit)

// Media types nook reads from a registry beyond image-spec's own.
const (
	mediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerConfig   = "application/vnd.docker.container.image.v1+json"
	mediaTypeDockerLayer    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	mediaTypeSchema1        = "application/vnd.docker.distribution.manifest.v1+json"
	mediaTypeSchema1Signed  = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// maxMetadata bounds a manifest or config, as containerd and Docker do.
const maxMetadata = 4 << 20

// PullOptions say how to pull.
type PullOptions struct {
	// Platform picks from a multi-platform index; zero means this machine's.
	Platform image.Platform
	AllTags  bool // every tag of the repository (the reference names none)
	// MaxConcurrent is how many layers download at once (default 3).
	MaxConcurrent int
	Chown         bool // keep layers' owners (in the user namespace)
	Hosts         hosts.Options
	Progress      func(Event) // nil reports nothing
	// Resolved, when set, is told each reference once its manifest is
	// found, before any layer moves (Docker's "TAG: Pulling from REPO").
	Resolved func(image.Ref)
	Log      *slog.Logger

	explicit bool // Platform was asked for, not this machine's by default
}

// Pulled is one image a pull stored.
type Pulled struct {
	Ref      image.Ref     // the full reference pulled (tag or digest)
	Digest   digest.Digest // what the registry gave for it (an index's, for a multi-platform image)
	Image    image.Image
	UpToDate bool // the store had it under that name already
	Warnings []string
}

// Pull fetches the image ref names (Docker's rules: busybox is
// docker.io/library/busybox:latest) into store s, or with AllTags every
// tag of its repository.
func Pull(ctx context.Context, s *image.Store, ref string, opts PullOptions) ([]Pulled, error) {
	r, err := image.ParseRef(ref)
	if err != nil {
		return nil, err
	}
	opts.explicit = opts.Platform.OS != ""
	if !opts.explicit {
		opts.Platform = image.HostPlatform()
	}
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = 3
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	eps, err := hosts.Resolve(r.Name(), false, opts.Hosts)
	if err != nil {
		return nil, err
	}
	if !opts.AllTags {
		if r.NameOnly() {
			r.Tag = "latest"
		}
		p, err := pullOne(ctx, s, eps, r, opts)
		if err != nil {
			return nil, err // no Digest/Status lines for an image not pulled
		}
		return []Pulled{p}, nil
	}
	if !r.NameOnly() {
		return nil, fmt.Errorf("%w: %s: a tag or digest cannot be used with --all-tags", image.ErrInvalidReference, r.Familiar())
	}
	tags, err := listTags(ctx, eps, r)
	if err != nil {
		return nil, err
	}
	var out []Pulled
	for _, t := range tags {
		tr := r
		tr.Tag = t
		p, err := pullOne(ctx, s, eps, tr, opts)
		if err != nil {
			return out, err
		}
		out = append(out, p)
	}
	return out, nil
}

// listTags asks the first endpoint that answers for the repository's tags.
func listTags(ctx context.Context, eps []hosts.Endpoint, r image.Ref) ([]string, error) {
	var last error
	for _, ep := range eps {
		var tags []string
		err := ep.Repo.Tags(ctx, "", func(page []string) error {
			tags = append(tags, page...)
			return nil
		})
		if err == nil {
			slices.Sort(tags) // the registry's order is its own
			return tags, nil
		}
		last = explainFetch(err, r.Familiar(), ep.Host)
	}
	return nil, last
}

// pullOne tries each endpoint in turn for the manifest; the first that
// has it serves the whole image.
func pullOne(ctx context.Context, s *image.Store, eps []hosts.Endpoint, r image.Ref, opts PullOptions) (Pulled, error) {
	var last error
	for _, ep := range eps {
		m, err := resolve(ctx, ep, r, opts.Platform, opts.explicit)
		if err != nil {
			if ep.Mirror {
				opts.Log.Info("mirror does not serve the image", "mirror", ep.Host, "ref", r.String(), "err", err)
			}
			last = err
			continue
		}
		if opts.Resolved != nil {
			opts.Resolved(r)
		}
		return m.pull(ctx, s, opts)
	}
	return Pulled{}, last
}

// pull fetches the layers the store lacks, N at once, and commits.
func (m *resolved) pull(ctx context.Context, s *image.Store, opts PullOptions) (Pulled, error) {
	p, err := s.BeginPull(image.PullOptions{Chown: opts.Chown})
	if err != nil {
		return Pulled{}, err
	}
	defer p.Close()
	report := opts.Progress
	if report == nil {
		report = func(Event) {}
	}
	// A blob listed twice is fetched once; one the store has is only
	// reported, as Docker does.
	var layers []int
	for i, l := range m.manifest.Layers {
		if slices.ContainsFunc(layers, func(j int) bool { return m.manifest.Layers[j].Digest == l.Digest }) {
			continue
		}
		if have := (image.PullLayer{Desc: l, DiffID: m.diffIDs[i]}); p.Have(have) {
			// Layer only records where the blob is: no network.
			if _, err := p.Layer(ctx, have); err != nil {
				return Pulled{}, err
			}
			report(Event{ID: shortID(l.Digest), Status: StatusExists})
			continue
		}
		layers = append(layers, i)
		report(Event{ID: shortID(l.Digest), Status: StatusPullingFS, Total: l.Size})
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.MaxConcurrent)
	for _, i := range layers[min(opts.MaxConcurrent, len(layers)):] {
		report(Event{ID: shortID(m.manifest.Layers[i].Digest), Status: StatusWaiting, Total: m.manifest.Layers[i].Size})
	}
	for _, i := range layers {
		g.Go(func() error { return m.layer(gctx, p, m.manifest.Layers[i], m.diffIDs[i], report) })
	}
	if err := g.Wait(); err != nil {
		return Pulled{}, err
	}
	name := m.ref.String()
	if m.ref.Digest != "" {
		name = m.ref.Name() + "@" + m.ref.Digest.String()
	}
	res, err := p.Commit(image.PullImage{Name: name, RepoDigest: m.top, Manifest: m.raw, ManifestMediaType: m.mediaType, Config: m.config})
	if err != nil {
		return Pulled{}, fmt.Errorf("storing %s: %w", m.ref.Familiar(), err)
	}
	// Where the blobs came from, for a later push's cross-repository mount.
	if err := s.Record(image.DistributionRecord{Sources: map[string][]digest.Digest{m.ref.Name(): blobsOf(m.manifest)}}); err != nil {
		return Pulled{}, fmt.Errorf("storing %s: %w", m.ref.Familiar(), err)
	}
	out := Pulled{Ref: m.ref, Digest: m.top, Image: res.Image, UpToDate: res.UpToDate, Warnings: m.warnings}
	lr := p.Result()
	out.Warnings = append(out.Warnings, lr.Skipped...)
	if lr.SingleID {
		out.Warnings = append(out.Warnings, "only one id is mapped (single-id mode): files belong to root inside containers, their owners are recorded in user.rootlesscontainers and kept in images")
	}
	return out, nil
}

// layer gets one layer into the pull's staging, reporting its progress.
func (m *resolved) layer(ctx context.Context, p *image.Pull, l ocispec.Descriptor, diffID digest.Digest, report func(Event)) error {
	id := shortID(l.Digest)
	var last int64
	outcome, err := p.Layer(ctx, image.PullLayer{
		Desc: l, DiffID: diffID,
		Fetch: func(ctx context.Context, offset int64) (io.ReadCloser, error) {
			return m.openBlob(ctx, l, offset)
		},
		Progress: func(n int64) {
			// One event per 1% (and the last byte), not per read.
			if n == l.Size || n-last >= max(l.Size/100, 64<<10) {
				last = n
				report(Event{ID: id, Status: StatusDownloading, Current: n, Total: l.Size})
			}
		},
	})
	if err != nil {
		return fmt.Errorf("%s: layer %s: %w", m.ref.Familiar(), l.Digest, err)
	}
	switch outcome {
	case image.LayerExists:
		report(Event{ID: id, Status: StatusExists})
		return nil
	case image.LayerFetched:
		report(Event{ID: id, Status: StatusVerifying, Current: l.Size, Total: l.Size})
	case image.LayerUnpacked:
		report(Event{ID: id, Status: StatusExtracting, Current: l.Size, Total: l.Size})
	}
	report(Event{ID: id, Status: StatusPullComplete})
	return nil
}

func shortID(d digest.Digest) string {
	e := d.Encoded()
	return e[:min(12, len(e))]
}
