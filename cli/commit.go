package cli

import (
	"fmt"

	"nook/build"
	"nook/container"
)

// CommitCmd is `nook commit`.
type CommitCmd struct {
	Message string `short:"m" help:"Commit message (the history comment)."`
	Author  string `short:"a" help:"Author (e.g. \"Jane Doe <jane@example.com>\")."`
	changeFlag
	Pause     bool   `short:"p" default:"true" negatable:"" help:"Accepted for Docker's sake and ignored: a rootless host has no freezer, so a running container is committed as it runs (a file changing while read fails the commit)."`
	Container string `arg:"" help:"Container."`
	Ref       string `arg:"" optional:"" help:"Name for the new image (REPOSITORY[:TAG])."`
}

// Run makes the image and prints its id.
func (c *CommitCmd) Run(g *Globals) error {
	// The writable layer holds files of the container's ids, and the new
	// layer must keep them.
	if done, err := g.enterUserNS(); done {
		return err
	}
	m, ctr, err := g.openContainer(c.Container)
	if err != nil {
		return err
	}
	if ctr.Running() && c.Pause {
		g.Log.Debug("not pausing: no freezer for rootless containers", "container", ctr.Name)
	}
	img, err := m.Commit(ctr, container.CommitOptions{Name: c.Ref, Comment: c.Message, Author: c.Author, Changes: build.Changes(c.Change)})
	if err != nil {
		return err
	}
	fmt.Fprintln(g.Stdout, img.ID)
	return nil
}
