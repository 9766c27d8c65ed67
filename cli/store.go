package cli

import (
	"io"
	"os"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"nook/image"
)

// openStore opens the store named by --root, or the default one.
func (g *Globals) openStore() (*image.Store, error) {
	root := g.Root
	if root == "" {
		var err error
		if root, err = image.DefaultRoot(); err != nil {
			return nil, err
		}
	}
	return image.Open(root, image.Options{Logger: g.Log})
}

// canChown reports whether files may be given any owner: as root, real or
// in a user namespace. In a single-id namespace the unpacker notices and
// collapses owners to root.
func canChown() bool { return os.Geteuid() == 0 }

// progressReader shows a byte counter on a terminal; elsewhere, or with
// quiet, it returns r unchanged.
func (g *Globals) progressReader(r io.Reader, size int64, what string, quiet bool) (io.Reader, func()) {
	bar := g.progressBar(size, what, quiet)
	if bar == nil {
		return r, func() {}
	}
	return bar.Reader(r), bar.Finish
}

// progressWriter counts what is written through it on bar. It never
// fails: a total guessed short must not fail the operation it shows.
type progressWriter struct {
	w   io.Writer
	bar *progress
}

func (p progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.bar.Add(n)
	return n, err
}

// progress is a byte counter redrawn in place on a terminal. The library
// is vbauerster/mpb: the bar before it linked net/http, whose package init
// every nook process (CLI, shim, init) paid, ~3 ms each; another opened
// /dev/tty in each at init, container init included.
type progress struct {
	p   *mpb.Progress
	bar *mpb.Bar
}

// progressBar is a byte counter on stderr when it is a terminal (of size
// bytes, or open-ended for size <= 0); nil elsewhere or when quiet.
func (g *Globals) progressBar(size int64, what string, quiet bool) *progress {
	f, ok := g.Stderr.(*os.File)
	if quiet || !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	p := mpb.New(mpb.WithOutput(f), mpb.WithWidth(40), mpb.WithRefreshRate(50*time.Millisecond))
	opts := []mpb.BarOption{mpb.BarRemoveOnComplete()}
	if size > 0 {
		opts = append(opts,
			mpb.PrependDecorators(decor.Name(what+" "), decor.Counters(decor.SizeB1024(0), "% .1f / % .1f")),
			mpb.AppendDecorators(decor.Percentage(decor.WCSyncSpace)))
		return &progress{p, p.AddBar(size, opts...)}
	}
	opts = append(opts, mpb.PrependDecorators(decor.Name(what+" "), decor.Current(decor.SizeB1024(0), "% .1f")))
	return &progress{p, p.New(0, mpb.NopStyle(), opts...)}
}

// Add counts n bytes.
func (b *progress) Add(n int) { b.bar.IncrBy(n) }

// Reader counts what is read through it.
func (b *progress) Reader(r io.Reader) io.Reader { return b.bar.ProxyReader(r) }

// Finish takes the bar off the terminal, complete or not: a sized bar
// counts short when the work skips bytes (a load of layers the store has).
func (b *progress) Finish() {
	b.bar.Abort(true)
	b.p.Wait()
}
