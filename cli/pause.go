package cli

import (
	"fmt"

	"nook/container"
)

// PauseCmd is `nook pause`.
type PauseCmd struct {
	Containers []string `arg:"" help:"Containers to pause (SIGSTOP to each of their processes)."`
}

// Run pauses each container, printing its name as Docker does.
func (c *PauseCmd) Run(g *Globals) error {
	return g.eachContainer(c.Containers, func(m *container.Manager, ctr *container.Container) error {
		if err := m.Pause(ctr); err != nil {
			return err
		}
		fmt.Fprintln(g.Stdout, echoRef(c.Containers, ctr))
		return nil
	})
}

// UnpauseCmd is `nook unpause`.
type UnpauseCmd struct {
	Containers []string `arg:"" help:"Containers to resume (SIGCONT)."`
}

// Run resumes each container.
func (c *UnpauseCmd) Run(g *Globals) error {
	return g.eachContainer(c.Containers, func(m *container.Manager, ctr *container.Container) error {
		if err := m.Unpause(ctr); err != nil {
			return err
		}
		fmt.Fprintln(g.Stdout, echoRef(c.Containers, ctr))
		return nil
	})
}
