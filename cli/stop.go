package cli

import (
	"fmt"
	"time"

	"nook/container"
)

// StopCmd is `nook stop`.
type StopCmd struct {
	Time       *int     `short:"t" aliases:"timeout" help:"Seconds to wait after the stop signal before killing (default: the container's, else 10)."`
	Containers []string `arg:"" help:"Containers to stop."`
}

// Run stops each container and echoes its name.
func (c *StopCmd) Run(g *Globals) error {
	timeout := seconds(c.Time)
	return g.eachContainer(c.Containers, func(m *container.Manager, ctr *container.Container) error {
		if err := m.Stop(ctr, timeout); err != nil {
			return err
		}
		fmt.Fprintln(g.Stdout, echoRef(c.Containers, ctr))
		return nil
	})
}

// KillCmd is `nook kill`.
type KillCmd struct {
	Signal     string   `short:"s" default:"KILL" help:"Signal to send."`
	Containers []string `arg:"" help:"Containers to signal."`
}

// Run signals each container.
func (c *KillCmd) Run(g *Globals) error {
	sig, err := container.ParseSignal(c.Signal)
	if err != nil {
		return err
	}
	return g.eachContainer(c.Containers, func(m *container.Manager, ctr *container.Container) error {
		if err := m.Kill(ctr, sig); err != nil {
			return err
		}
		fmt.Fprintln(g.Stdout, echoRef(c.Containers, ctr))
		return nil
	})
}

// WaitCmd is `nook wait`.
type WaitCmd struct {
	Containers []string `arg:"" help:"Containers to wait for."`
}

// Run prints each container's exit code once it stops.
func (c *WaitCmd) Run(g *Globals) error {
	return g.eachContainer(c.Containers, func(m *container.Manager, ctr *container.Container) error {
		code, err := m.Wait(ctr)
		if err != nil {
			return err
		}
		fmt.Fprintln(g.Stdout, code)
		return nil
	})
}

// RmCmd is `nook rm`.
type RmCmd struct {
	Force      bool     `short:"f" help:"Kill a running container first; a container that does not exist is no error."`
	Volumes    bool     `short:"v" help:"Remove the container's anonymous volumes too."`
	Containers []string `arg:"" help:"Containers to remove."`
}

// Run removes each container. Its writable layer holds files of the
// container's ids, so removal runs inside the user namespace.
func (c *RmCmd) Run(g *Globals) error {
	if done, err := g.enterUserNS(); done {
		return err
	}
	return g.eachContainerOf(c.Containers, c.Force, func(m *container.Manager, ctr *container.Container) error {
		if err := m.RemoveWith(ctr, container.RemoveOptions{Force: c.Force, Volumes: c.Volumes}); err != nil {
			return err
		}
		fmt.Fprintln(g.Stdout, echoRef(c.Containers, ctr))
		return nil
	})
}

// echoRef is how the user named a container, which Docker echoes back.
func echoRef(refs []string, ctr *container.Container) string {
	for _, r := range refs {
		if r == ctr.Name || r == ctr.ID {
			return r
		}
	}
	for _, r := range refs {
		if len(r) < len(ctr.ID) && ctr.ID[:len(r)] == r {
			return r
		}
	}
	return ctr.Name
}

// seconds turns an optional -t flag into a duration, nil when not given.
func seconds(t *int) *time.Duration {
	if t == nil {
		return nil
	}
	d := time.Duration(*t) * time.Second
	return &d
}
