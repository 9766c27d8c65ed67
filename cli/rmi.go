package cli

import (
	"errors"
	"fmt"

	"nook/container"
	"nook/image"
	"nook/rootless"
)

// RmiCmd is `nook rmi`.
type RmiCmd struct {
	Images []string `arg:"" help:"Images to remove: names, ids or digests."`
	Force  bool     `short:"f" help:"Remove an image with several names, or untag one a container uses; an image that does not exist is no error."`
}

// Run removes each image, reporting every failure and going on.
func (c *RmiCmd) Run(g *Globals) error {
	if done, err := g.enterUserNS(); done {
		return err
	}
	s, users, err := g.storeAndImageUsers()
	if err != nil {
		return err
	}
	failed := 0
	for _, ref := range c.Images {
		rep, err := s.Remove(ref, image.RemoveOptions{Force: c.Force, InUse: users})
		printRemoval(g, rep)
		if c.Force && errors.Is(err, image.ErrNotFound) {
			continue // as Docker ≥ 20.10: what is gone needs no removing
		}
		if err != nil {
			fmt.Fprintf(g.Stderr, "nook: removing %s: %v\n", ref, err)
			failed++
		}
	}
	if failed > 0 {
		return ExitError{Code: rootless.ExitSetupFailed}
	}
	return nil
}

func printRemoval(g *Globals, rep image.RemoveReport) {
	for _, n := range rep.Untagged {
		fmt.Fprintf(g.Stdout, "Untagged: %s\n", n)
	}
	for _, d := range rep.Deleted {
		fmt.Fprintf(g.Stdout, "Deleted: %s\n", d)
	}
}

// ImagePruneCmd is `nook image prune`.
type ImagePruneCmd struct {
	All   bool `short:"a" help:"Remove every image no container uses, not only dangling ones."`
	Force bool `short:"f" help:"Do not ask for confirmation."`
}

// Run prunes.
func (c *ImagePruneCmd) Run(g *Globals) error {
	if done, err := g.enterUserNS(); done {
		return err
	}
	if !c.Force {
		what := "all dangling images"
		if c.All {
			what = "all images without at least one container associated to them"
		}
		if !confirm(g, "WARNING! This will remove "+what+".\nAre you sure you want to continue? [y/N] ") {
			return nil
		}
	}
	s, users, err := g.storeAndImageUsers()
	if err != nil {
		return err
	}
	rep, err := s.Prune(image.PruneOptions{All: c.All, InUse: users})
	if err != nil && len(rep.Deleted) == 0 {
		return err // nothing was committed: nothing to report
	}
	if len(rep.Untagged)+len(rep.Deleted) > 0 {
		fmt.Fprintln(g.Stdout, "Deleted Images:")
		printRemoval(g, rep)
		fmt.Fprintln(g.Stdout)
	}
	fmt.Fprintf(g.Stdout, "Total reclaimed space: %s\n", humanSize(rep.Reclaimed))
	return err
}

// confirm asks on stderr and reads one line of stdin.
func confirm(g *Globals, question string) bool {
	fmt.Fprint(g.Stderr, question)
	var answer string
	_, _ = fmt.Fscanln(g.Stdin, &answer)
	return answer == "y" || answer == "Y" || answer == "yes"
}

// storeAndImageUsers opens the store and learns which images containers use.
func (g *Globals) storeAndImageUsers() (*image.Store, func(image.Image) string, error) {
	s, err := g.openStore()
	if err != nil {
		return nil, nil, err
	}
	m, err := container.Open(s, container.Options{Logger: g.Log})
	if err != nil {
		return nil, nil, err
	}
	users, err := m.ImageUsers()
	if err != nil {
		return nil, nil, fmt.Errorf("listing containers: %w", err)
	}
	return s, users, nil
}
