package cli

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"

	"nook/container"
	"nook/image/layer"
	"nook/internal/atomicfile"
)

// ExportCmd is `nook export`.
type ExportCmd struct {
	Output    string `short:"o" placeholder:"FILE" help:"Write to FILE instead of stdout (- for stdout)."`
	Quiet     bool   `short:"q" help:"No progress output."`
	Container string `arg:"" help:"Container."`
}

var errExportTerminal = errors.New("cowardly refusing to export to a terminal. Use the -o flag or redirect")

// Run writes the container's filesystem as one flat tar: every layer
// merged, deletions applied, owners as the container sees them.
func (c *ExportCmd) Run(g *Globals) error {
	toStdout := c.Output == "" || c.Output == "-"
	if f, ok := g.Stdout.(*os.File); toStdout && ok && term.IsTerminal(int(f.Fd())) {
		return errExportTerminal
	}
	if done, err := g.enterMountNS(); done {
		return err
	}
	m, ctr, err := g.openContainer(c.Container)
	if err != nil {
		return err
	}
	// A read-only view: a running container keeps running, and its
	// writable layer is not ours to change.
	root, err := m.MountRootfs(ctr, container.RootfsOptions{})
	if err != nil {
		return err
	}
	defer root.Close()
	write := func(w io.Writer) error {
		if bar := g.progressBar(-1, "exporting", c.Quiet); bar != nil {
			w = progressWriter{w, bar}
			defer bar.Finish()
		}
		return layer.Write(w, root.Dir, layer.WriteOptions{Root: true, Logger: g.Log})
	}
	switch {
	case toStdout:
		err = write(g.Stdout)
	default:
		if fi, serr := os.Stat(c.Output); serr == nil && !fi.Mode().IsRegular() {
			err = writeTo(c.Output, write) // a device or a pipe: no rename over it
		} else {
			err = atomicfile.Write(c.Output, 0o644, write)
		}
	}
	if err != nil {
		return fmt.Errorf("exporting %s: %w", ctr.Name, err)
	}
	return root.Close()
}
