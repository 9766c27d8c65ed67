package cli

import (
	"bufio"
	"fmt"
)

// DiffCmd is `nook diff`.
type DiffCmd struct {
	Container string `arg:"" help:"Container."`
}

// Run prints the container's changes: A added, C changed, D deleted.
func (c *DiffCmd) Run(g *Globals) error {
	// The writable layer holds files of the container's ids.
	if done, err := g.enterUserNS(); done {
		return err
	}
	m, ctr, err := g.openContainer(c.Container)
	if err != nil {
		return err
	}
	changes, err := m.Changes(ctr)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(g.Stdout)
	for _, ch := range changes {
		fmt.Fprintf(w, "%s %s\n", ch.Kind, ch.Path)
	}
	return w.Flush()
}
