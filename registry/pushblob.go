package registry

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"nook/image"
	"nook/internal/compression"
)

// pushImage sends pl's blobs, Opts.Concurrency at once, then its config
// and, for each tag, its manifest.
func (p *pusher) pushImage(ctx context.Context, pl *planImage) ([]Pushed, error) {
	// The config's HEAD goes first, alone: a registry that refuses this
	// push says so before any progress is shown.
	cfg := pl.manifest.Config
	haveConfig, err := p.repo.Exists(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("checking blob %s: %w", cfg.Digest, err)
	}
	for _, l := range pl.layers {
		p.event(Event{ID: shortID(l.diffID), Status: StatusPreparing})
	}
	for i, l := range pl.layers {
		if i >= p.opts.Concurrency { // queued behind the limit, as Docker shows them
			p.event(Event{ID: shortID(l.diffID), Status: StatusWaiting})
		}
	}
	layers := make([]ocispec.Descriptor, len(pl.layers))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.opts.Concurrency)
	for i := range pl.layers {
		g.Go(func() error {
			desc, err := p.pushLayer(gctx, &pl.layers[i])
			layers[i] = desc
			return err
		})
	}
	if haveConfig {
		p.noteSent(cfg.Digest)
	} else {
		g.Go(func() error {
			return p.pushBlob(gctx, cfg, "", func() io.Reader { return bytes.NewReader(pl.config) }, pl.configSources)
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	desc, raw, err := pushManifest(pl, layers)
	if err != nil {
		return nil, err
	}
	var out []Pushed
	for _, tag := range pl.tags {
		r, err := image.ParseRef(tag)
		if err != nil {
			return out, err
		}
		if err := p.repo.PushReference(ctx, desc, bytes.NewReader(raw), r.Tag); err != nil {
			return out, fmt.Errorf("pushing the manifest of %s: %w", r.Familiar(), err)
		}
		p.mu.Lock()
		p.repoDg = append(p.repoDg, image.RepoDigest{Name: tag, Manifest: pl.local, Digest: desc.Digest})
		p.mu.Unlock()
		out = append(out, Pushed{Ref: tag, Tag: r.Tag, Digest: desc.Digest, Size: desc.Size})
	}
	return out, nil
}

// pushLayer sends one layer, compressing a plain one first, and returns
// the descriptor of what the registry holds.
func (p *pusher) pushLayer(ctx context.Context, l *planLayer) (ocispec.Descriptor, error) {
	desc, file := l.desc, l.file
	sources := l.sources
	if l.plain {
		c, err := p.compressed(l)
		if err != nil {
			return desc, err
		}
		desc, file, sources = c.Desc, c.File, nil
		desc.Annotations = l.desc.Annotations
	}
	id := shortID(l.diffID)
	content := func() io.Reader { return io.NewSectionReader(file, 0, desc.Size) }
	return desc, p.pushBlob(ctx, desc, id, content, sources)
}

// pushBlob sends one blob unless the repository has it: HEAD first, then a
// cross-repository mount when a repository of the same registry is known
// to hold it, else the bytes. id "" reports nothing (the config).
func (p *pusher) pushBlob(ctx context.Context, desc ocispec.Descriptor, id string, content func() io.Reader, sources []string) error {
	ok, err := p.repo.Exists(ctx, desc)
	if err != nil {
		return fmt.Errorf("checking blob %s: %w", desc.Digest, err)
	}
	if ok {
		p.noteSent(desc.Digest)
		p.report(id, Event{Status: StatusLayerExists})
		return nil
	}
	upload := func() io.Reader { return p.counting(id, desc.Size, content()) }
	for _, src := range sources {
		from, ok := p.sameRegistry(src)
		if !ok {
			continue
		}
		uploaded := false
		getContent := func() (io.ReadCloser, error) { uploaded = true; return io.NopCloser(upload()), nil }
		if err := p.repo.Mount(ctx, desc, from, getContent); err != nil {
			p.log.Debug("cross-repository mount failed", "blob", desc.Digest, "from", from, "err", err)
			if uploaded {
				return fmt.Errorf("pushing blob %s: %w", desc.Digest, err)
			}
			continue
		}
		p.noteSent(desc.Digest)
		if uploaded {
			p.report(id, Event{Status: StatusPushed})
		} else {
			p.report(id, Event{Status: StatusMounted, Detail: from})
		}
		return nil
	}
	if err := p.repo.Push(ctx, desc, upload()); err != nil {
		return fmt.Errorf("pushing blob %s: %w", desc.Digest, err)
	}
	p.noteSent(desc.Digest)
	p.report(id, Event{Status: StatusPushed})
	return nil
}

// sameRegistry returns the path of src (host/path) when it is another
// repository of the registry this push goes to.
func (p *pusher) sameRegistry(src string) (string, bool) {
	r, err := image.ParseRef(src)
	if err != nil || r.Domain != p.named.Domain || r.Path == p.named.Path {
		return "", false
	}
	return r.Path, true
}

func (p *pusher) report(id string, e Event) {
	if id == "" {
		return
	}
	e.ID = id
	p.event(e)
}

// counting reports Pushing events as r is read, every progressStep bytes.
func (p *pusher) counting(id string, total int64, r io.Reader) io.Reader {
	if id == "" || p.opts.Progress == nil {
		return r
	}
	return &countingReader{r: r, total: total, report: func(n int64) {
		p.event(Event{ID: id, Status: StatusPushing, Current: n, Total: total})
	}}
}

const progressStep = 512 << 10

type countingReader struct {
	r            io.Reader
	n, last      int64
	total        int64
	report       func(int64)
	reportedDone bool
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	if c.n-c.last >= progressStep || (c.n == c.total && !c.reportedDone) {
		c.last = c.n
		c.reportedDone = c.n == c.total
		c.report(c.n)
	}
	return n, err
}

// compressed returns l compressed in the push's format: made once per
// push, kept in the store afterwards (record), so the next push finds it
// remembered and compresses nothing.
func (p *pusher) compressed(l *planLayer) (image.CompressedBlob, error) {
	p.mu.Lock()
	c, ok := p.made[l.desc.Digest]
	p.mu.Unlock()
	if ok {
		return c, nil
	}
	c, err := compressBlob(l.file, l.desc, p.opts.Compression, p.s)
	if err != nil {
		return c, fmt.Errorf("compressing layer %s: %w", l.desc.Digest, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if prev, ok := p.made[l.desc.Digest]; ok { // another image of this push was faster
		c.File.Close()
		p.s.RemoveScratch(c.File)
		return prev, nil
	}
	p.made[l.desc.Digest] = c
	return c, nil
}

// scratchFiles makes and removes the files a push compresses into:
// image.Store's, in its tmp/, reached through its descriptor.
type scratchFiles interface {
	Scratch(prefix string) (*os.File, error)
	RemoveScratch(f *os.File) error
}

// compressBlob compresses the plain blob in src into a scratch file,
// hashing it as it is written.
func compressBlob(src *os.File, desc ocispec.Descriptor, format string, scratch scratchFiles) (c image.CompressedBlob, err error) {
	kind, mt := compression.Gzip, ocispec.MediaTypeImageLayerGzip
	if format == CompressionZstd {
		kind, mt = compression.Zstd, ocispec.MediaTypeImageLayerZstd
	}
	f, err := scratch.Scratch("push-" + desc.Digest.Encoded()[:12] + "-" + format + "-")
	if err != nil {
		return c, err
	}
	defer func() {
		if err != nil {
			f.Close()
			scratch.RemoveScratch(f)
		}
	}()
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	zw, err := compression.NewWriter(bw, kind, 0)
	if err != nil {
		return c, err
	}
	// The plain blob is hashed too: what is remembered for its digest
	// must be its content.
	sh := desc.Digest.Algorithm().Hash()
	n, err := io.Copy(zw, io.TeeReader(io.NewSectionReader(src, 0, desc.Size+1), sh))
	if err != nil {
		return c, err
	}
	if got := digest.NewDigest(desc.Digest.Algorithm(), sh); n != desc.Size || got != desc.Digest {
		return c, fmt.Errorf("%w: blob %s holds %d bytes of digest %s", image.ErrCorruptStore, desc.Digest, n, got)
	}
	if err := zw.Close(); err != nil {
		return c, err
	}
	if err := bw.Flush(); err != nil {
		return c, err
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return c, err
	}
	// Not synced here: the upload reads it from the page cache, and the
	// store syncs it only if it keeps it (image.Store.Record).
	d := digest.NewDigest(digest.SHA256, h)
	return image.CompressedBlob{Uncompressed: desc.Digest, Format: format, File: f,
		Desc: ocispec.Descriptor{MediaType: mt, Digest: d, Size: size}}, nil
}
