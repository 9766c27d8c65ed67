package cli

import (
	"fmt"
	"io"
	"os"
	"syscall"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"nook/image"
	"nook/rootless"
)

// stageCLI re-runs a verb inside a user namespace (see enterUserNS).
const stageCLI = "cli"

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

// enterUserNS re-runs the current verb inside a new user namespace that
// maps the user's subordinate ids, as Podman does, so that unpacked layers
// keep their owners and can be deleted again. It reports done=true when the
// verb already ran there; the returned error then carries its exit status.
// As real root, or already inside, the verb just runs here.
func (g *Globals) enterUserNS() (done bool, err error) {
	if rootless.InUserNS() || os.Geteuid() == 0 {
		return false, nil
	}
	maps, err := rootless.CurrentIDMaps()
	if err != nil {
		return true, fmt.Errorf("reading subordinate ids: %w", err)
	}
	if !maps.Full {
		fmt.Fprintf(g.Stderr, "nook: warning: %s; every file in an image will belong to root\n", maps.Why)
	}
	cmd := &rootless.Cmd{
		Stage:      stageCLI,
		Args:       g.Args,
		Cloneflags: syscall.CLONE_NEWUSER,
		IDMaps:     maps,
		Stdin:      g.Stdin,
		Stdout:     g.Stdout,
		Stderr:     g.Stderr,
		Pdeathsig:  syscall.SIGKILL, // the verb dies with the command the user sees
	}
	code, err := cmd.Run()
	if err != nil {
		return true, fmt.Errorf("entering a user namespace: %w", err)
	}
	if code != 0 {
		return true, ExitError{Code: code}
	}
	return true, nil
}

// canChown reports whether files may be given any owner: as root, real or
// in a user namespace. In a single-id namespace the unpacker notices and
// collapses owners to root.
func canChown() bool { return os.Geteuid() == 0 }

// progressReader shows a byte counter on a terminal; elsewhere, or with
// quiet, it returns r unchanged.
func (g *Globals) progressReader(r io.Reader, size int64, what string, quiet bool) (io.Reader, func()) {
	f, ok := g.Stderr.(*os.File)
	if quiet || !ok || !term.IsTerminal(int(f.Fd())) {
		return r, func() {}
	}
	if size <= 0 {
		size = -1
	}
	bar := progressbar.NewOptions64(size,
		progressbar.OptionSetWriter(f),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowBytes(true),
		progressbar.OptionThrottle(100_000_000),
		progressbar.OptionClearOnFinish(),
	)
	pr := progressbar.NewReader(r, bar)
	return &pr, func() { _ = bar.Finish() }
}
