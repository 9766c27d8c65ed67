package cli

import (
	"io"
	"os"

	"github.com/schollz/progressbar/v3"
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
	pr := progressbar.NewReader(r, bar)
	return &pr, func() { _ = bar.Finish() }
}

// progressWriter counts what is written through it on bar. It never
// fails: a total guessed short must not fail the operation it shows.
type progressWriter struct {
	w   io.Writer
	bar *progressbar.ProgressBar
}

func (p progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	_ = p.bar.Add(n)
	return n, err
}

// progressBar is a byte counter on stderr when it is a terminal (of size
// bytes, or open-ended for size <= 0); nil elsewhere or when quiet.
func (g *Globals) progressBar(size int64, what string, quiet bool) *progressbar.ProgressBar {
	f, ok := g.Stderr.(*os.File)
	if quiet || !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	if size <= 0 {
		size = -1
	}
	return progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(f),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowBytes(true),
		progressbar.OptionThrottle(100_000_000),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetRenderBlankState(true), // shown at once, however short the work
	)
}
