package cli

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/term"

	"nook/image"
	"nook/tarball"
)

// LoadCmd is `nook load`: images from an archive `docker save`, `podman
// save` or skopeo wrote, or from an OCI layout directory.
type LoadCmd struct {
	Input    string `short:"i" placeholder:"FILE" help:"Read from FILE (an archive, plain or compressed, or an OCI layout directory) instead of stdin."`
	Quiet    bool   `short:"q" help:"No progress output."`
	Platform string `help:"Load the image for this platform, os/arch[/variant], from a multi-platform archive (default: this machine's)."`
}

// Run loads the archive.
func (c *LoadCmd) Run(g *Globals) error {
	opts := tarball.ReadOptions{}
	if c.Platform != "" {
		p, err := image.ParsePlatform(c.Platform)
		if err != nil {
			return err
		}
		opts.Platform, opts.Explicit = p, true
	}
	fromStdin := c.Input == "" || c.Input == "-"
	if fromStdin {
		if f, ok := g.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			return errors.New("requested load from stdin, but stdin is a terminal: use -i FILE or redirect")
		}
	} else if _, err := os.Stat(c.Input); err != nil {
		return fmt.Errorf("loading %s: %w", c.Input, err)
	}
	if done, err := g.enterUserNS(); done {
		return err
	}
	name := c.Input
	if fromStdin {
		name = "stdin"
	}
	s, err := g.openStore()
	if err != nil {
		return err
	}
	// The archive is opened (a stream spooled, a compressed file
	// decompressed) before the store is locked: `nook save | nook load`
	// on one store must not wait for itself.
	var a *tarball.Archive
	if fromStdin {
		r, finish := g.progressReader(g.Stdin, -1, "reading", c.Quiet)
		a, err = tarball.Open(r, name, s.Spool)
		finish()
	} else {
		a, err = tarball.OpenFile(c.Input, s.Spool)
	}
	if err != nil {
		return fmt.Errorf("loading %s: %w", name, s.ExplainNoSpace(err))
	}
	defer a.Close()
	bar := g.progressBar(a.Size(), "loading", c.Quiet)
	if bar != nil {
		opts.Progress = bar.Reader
	}
	res, err := s.Load(image.LoadOptions{Chown: canChown()}, func(add image.AddFunc) error {
		return tarball.Read(a, opts, add)
	})
	if bar != nil {
		bar.Finish() // off the terminal before the report
	}
	if err != nil {
		return fmt.Errorf("loading %s: %w", name, err)
	}
	warnSkipped(g, res.Skipped)
	if res.SingleID {
		fmt.Fprintln(g.Stderr, "nook: warning: only one id is mapped (single-id mode): files belong to root inside containers, their owners are recorded in user.rootlesscontainers and kept in images")
	}
	for _, r := range res.Renamed {
		fmt.Fprintf(g.Stdout, "The image %s already exists, renaming the old one with ID %s to empty string\n", image.FamiliarName(r.Name), r.OldID)
	}
	for _, l := range res.Images {
		if len(l.Names) == 0 {
			fmt.Fprintf(g.Stdout, "Loaded image ID: %s\n", l.Image.ID)
		}
		for _, n := range l.Names {
			fmt.Fprintf(g.Stdout, "Loaded image: %s\n", image.FamiliarName(n))
		}
	}
	return nil
}
