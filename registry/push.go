package registry

// A push, in the order it talks to the store and the registry:
//
//	store (shared lock)    resolve the tags; open every blob to send; read
//	                       what the store remembers (compressed forms of
//	                       plain layers, repositories that hold a blob)
//	(no lock)              per blob, 3 at once: compress a plain layer
//	                       into scratch space (once: remembered below);
//	                       HEAD → present: "Layer already exists";
//	                       POST ?mount=&from= for a blob another repository
//	                       of the registry holds → "Mounted from";
//	                       else POST + PUT the bytes → "Pushed"
//	                       then the config, then the manifest under its tag
//	store (exclusive lock) keep the compressed blobs and what the registry
//	                       now holds (sources, RepoDigests); no network

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	"oras.land/oras-go/v2/registry/remote"

	"nook/image"
	"nook/registry/hosts"
)

// Compression formats a push gives layers the store keeps uncompressed.
const (
	CompressionGzip = "gzip"
	CompressionZstd = "zstd"
)

// ErrAllTags: --all-tags with a reference that names a tag or digest.
var ErrAllTags = errors.New("tag can't be used with --all-tags/-a")

// PushOptions tune Push.
type PushOptions struct {
	AllTags     bool   // every tag of the repository, not one
	Compression string // for layers the store keeps uncompressed: gzip (default) or zstd
	Concurrency int    // blobs moving at once; 3 when 0
	Hosts       hosts.Options
	Progress    func(Event) // called from several goroutines; nil reports nothing
	Log         *slog.Logger
}

// Pushed is one tag a push sent.
type Pushed struct {
	Ref    string        // full reference: localhost:5000/app:1
	Tag    string        // the tag alone, as Docker prints it
	Digest digest.Digest // the manifest's digest in the registry
	Size   int64         // the manifest's size
}

// Push sends the image ref names (a tag; without one, :latest, or with
// AllTags every tag of the repository) from the store to its registry, and
// returns what each tag now points at there. On error nothing is tagged
// in the registry that was not before; blobs sent stay, as the protocol
// wants, and the next push skips them.
func Push(ctx context.Context, s *image.Store, ref string, opts PushOptions) ([]Pushed, error) {
	named, err := pushRef(ref, opts.AllTags)
	if err != nil {
		return nil, err
	}
	p, err := newPusher(s, named, opts)
	if err != nil {
		return nil, err
	}
	plans, err := p.plan(named)
	if err != nil {
		return nil, err
	}
	defer closePlans(plans)
	eps, err := hosts.Resolve(named.Name(), true, opts.Hosts)
	if err != nil {
		return nil, fmt.Errorf("pushing %s: %w", named.Familiar(), err)
	}
	p.repo, p.host = eps[0].Repo, eps[0].Host
	var out []Pushed
	for _, pl := range plans {
		pushed, err := p.pushImage(ctx, pl)
		if err != nil {
			err = explain(err, pl.familiar(), p.host)
			// What was compressed is kept even when the push failed.
			return out, errors.Join(err, p.record(out))
		}
		out = append(out, pushed...)
	}
	return out, p.record(out)
}

// pushRef reads the user's reference as `docker push` does.
func pushRef(ref string, all bool) (image.Ref, error) {
	named, err := image.ParseRef(ref)
	switch {
	case err != nil:
		return named, err
	case named.Digest != "":
		return named, fmt.Errorf("%w: %s: push names a tag, not a digest", image.ErrInvalidReference, ref)
	case all && named.Tag != "":
		return named, fmt.Errorf("%s: %w", ref, ErrAllTags)
	case !all && named.Tag == "":
		named.Tag = "latest"
	}
	return named, nil
}

// pusher is one push in progress: the registry's repository and what the
// push has learned for the store.
type pusher struct {
	s      *image.Store
	named  image.Ref
	opts   PushOptions
	log    *slog.Logger
	repo   *remote.Repository
	host   string
	mu     sync.Mutex
	made   map[digest.Digest]image.CompressedBlob // compressed this push, by uncompressed digest
	repoDg []image.RepoDigest                     // tags sent
	sent   []digest.Digest                        // blobs the repository holds now
}

func newPusher(s *image.Store, named image.Ref, opts PushOptions) (*pusher, error) {
	switch opts.Compression {
	case "":
		opts.Compression = CompressionGzip
	case CompressionGzip, CompressionZstd:
	default:
		return nil, fmt.Errorf("compression format %q: want %s or %s", opts.Compression, CompressionGzip, CompressionZstd)
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 3
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &pusher{s: s, named: named, opts: opts, log: log,
		made: map[digest.Digest]image.CompressedBlob{}}, nil
}

func (p *pusher) event(e Event) {
	if p.opts.Progress != nil {
		p.opts.Progress(e)
	}
}

// record keeps, under the store's lock and after the network I/O, what
// this push made and learned; then the scratch files go.
func (p *pusher) record(pushed []Pushed) error {
	rec := image.DistributionRecord{RepoDigests: p.repoDg}
	if len(p.sent) > 0 {
		rec.Sources = map[string][]digest.Digest{p.named.Name(): p.sent}
	}
	for _, c := range p.made {
		rec.Compressed = append(rec.Compressed, c)
	}
	defer func() {
		for _, c := range p.made {
			c.File.Close()
			p.s.RemoveScratch(c.File) // gone when kept: renamed into blobs/
		}
	}()
	if len(rec.Compressed) == 0 && len(rec.Sources) == 0 && len(rec.RepoDigests) == 0 {
		return nil
	}
	start := time.Now()
	if err := p.s.Record(rec); err != nil {
		return fmt.Errorf("recording the push of %s in the store: %w", p.named.Familiar(), err)
	}
	p.log.Debug("recorded push", "compressed", len(rec.Compressed), "blobs", len(p.sent), "tags", len(pushed), "took", time.Since(start))
	return nil
}

func (p *pusher) noteSent(d digest.Digest) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !slices.Contains(p.sent, d) {
		p.sent = append(p.sent, d)
	}
}
