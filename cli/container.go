package cli

import (
	"fmt"

	"nook/container"
)

// ContainerCmd is `nook container ...`: the container verbs under one name.
type ContainerCmd struct {
	Ls      PsCmd               `cmd:"" aliases:"ps,list" help:"List containers."`
	Run     RunCmd              `cmd:"" help:"Create and start a container."`
	Create  CreateCmd           `cmd:"" help:"Create a container."`
	Start   StartCmd            `cmd:"" help:"Start containers."`
	Stop    StopCmd             `cmd:"" help:"Stop containers."`
	Restart RestartCmd          `cmd:"" help:"Restart containers."`
	Kill    KillCmd             `cmd:"" help:"Send a signal to containers."`
	Wait    WaitCmd             `cmd:"" help:"Wait for containers to stop."`
	Rm      RmCmd               `cmd:"" help:"Remove containers."`
	Logs    LogsCmd             `cmd:"" help:"Print a container's output."`
	Inspect ContainerInspectCmd `cmd:"" help:"Show containers as JSON."`
	Prune   ContainerPruneCmd   `cmd:"" help:"Remove all stopped containers."`
	Diff    DiffCmd             `cmd:"" help:"List the changes in a container's filesystem."`
	Commit  CommitCmd           `cmd:"" help:"Create an image from a container's changes."`
	Export  ExportCmd           `cmd:"" help:"Write a container's filesystem as a tar archive."`
	Cp      CpCmd               `cmd:"" help:"Copy files between a container and the host."`
	Rename  RenameCmd           `cmd:"" help:"Rename a container."`
	Pause   PauseCmd            `cmd:"" help:"Pause containers."`
	Unpause UnpauseCmd          `cmd:"" help:"Resume paused containers."`
}

// RestartCmd is `nook restart`.
type RestartCmd struct {
	Time       *int     `short:"t" aliases:"timeout" help:"Seconds to wait for the stop before killing."`
	Containers []string `arg:"" help:"Containers to restart."`
}

// Run stops and starts each container in the background.
func (c *RestartCmd) Run(g *Globals) error {
	timeout := seconds(c.Time)
	return g.eachContainer(c.Containers, func(m *container.Manager, ctr *container.Container) error {
		if err := m.Stop(ctr, timeout); err != nil {
			return err
		}
		if _, err := m.Start(ctr, container.StartOptions{Detach: true, LogLevel: g.slogLevel()}); err != nil {
			return err
		}
		fmt.Fprintln(g.Stdout, echoRef(c.Containers, ctr))
		return nil
	})
}

// ContainerPruneCmd is `nook container prune`.
type ContainerPruneCmd struct {
	Force bool `short:"f" help:"Do not ask for confirmation (nook never asks)."`
}

// Run removes every container that is not running, and what killed
// creations left.
func (c *ContainerPruneCmd) Run(g *Globals) error {
	if done, err := g.enterUserNS(); done {
		return err
	}
	m, err := g.openContainers()
	if err != nil {
		return err
	}
	all, err := m.List()
	if err != nil {
		return err
	}
	// The remains of creations that were killed are no containers to
	// list, but prune is where a user clears what nook left behind.
	if debris, err := m.RemoveDebris(); err != nil {
		fmt.Fprintf(g.Stderr, "nook: %v\n", err)
	} else if len(debris) > 0 {
		g.Log.Info("removed the remains of killed creations", "directories", debris)
	}
	fmt.Fprintln(g.Stdout, "Deleted Containers:")
	for _, ctr := range all {
		if ctr.Running() {
			continue
		}
		if err := m.Remove(ctr, false); err != nil {
			fmt.Fprintf(g.Stderr, "nook: %v\n", err)
			continue
		}
		fmt.Fprintln(g.Stdout, ctr.ID)
	}
	return nil
}
