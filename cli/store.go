package cli

import (
	"io"
	"os"
	"time"

	"github.com/cheggaaa/pb/v3"
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
	return bar.NewProxyReader(r), func() { bar.Finish() }
}

// progressWriter counts what is written through it on bar. It never
// fails: a total guessed short must not fail the operation it shows.
type progressWriter struct {
	w   io.Writer
	bar *pb.ProgressBar
}

func (p progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	p.bar.Add(n)
	return n, err
}

// Templates of the byte counter, with a bar when the total is known.
const (
	barSized   = `{{string . "prefix"}} {{counters . }} {{bar . }} {{percent . }} {{speed . }}`
	barUnsized = `{{string . "prefix"}} {{counters . }} {{speed . }}`
)

// progressBar is a byte counter on stderr when it is a terminal (of size
// bytes, or open-ended for size <= 0); nil elsewhere or when quiet. The
// library is cheggaaa/pb: unlike the bar before it, it links no net/http,
// whose package init every nook process (CLI, shim, init) paid, ~3 ms each.
func (g *Globals) progressBar(size int64, what string, quiet bool) *pb.ProgressBar {
	f, ok := g.Stderr.(*os.File)
	if quiet || !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	tmpl := barSized
	if size <= 0 {
		size, tmpl = 0, barUnsized
	}
	// pb would measure stdout, which save and export may write to.
	width, _, err := term.GetSize(int(f.Fd()))
	if err != nil || width <= 0 {
		width = 80
	}
	bar := pb.New64(size).SetWriter(f).SetTemplateString(tmpl).SetWidth(width).SetRefreshRate(100*time.Millisecond).
		Set(pb.Bytes, true).Set(pb.CleanOnFinish, true).Set("prefix", what).Start()
	bar.Write() // shown at once, however short the work
	return bar
}
