package cli

import (
	"fmt"

	"nook/container"
)

// StartCmd is `nook start`.
type StartCmd struct {
	Attach      bool     `short:"a" help:"Stay attached: print the output and exit with the container's status (one container)."`
	Interactive bool     `short:"i" help:"Pass stdin to the container (with -a)."`
	DetachKeys  string   `name:"detach-keys" placeholder:"KEYS" help:"Keys that detach from the container (default ctrl-p,ctrl-q)."`
	Containers  []string `arg:"" help:"Containers to start."`
}

// Run starts each container in the background, or one in the foreground.
func (c *StartCmd) Run(g *Globals) error {
	if c.Attach || c.Interactive {
		if len(c.Containers) != 1 {
			return fmt.Errorf("you cannot start and attach multiple containers at once")
		}
		keys, err := detachKeys(c.DetachKeys)
		if err != nil {
			return err
		}
		m, err := g.openContainers()
		if err != nil {
			return err
		}
		ctr, err := m.Get(c.Containers[0])
		if err != nil {
			return err
		}
		if c.Interactive {
			if err := container.CheckInputTTY(ctr, g.Stdin); err != nil {
				return fmt.Errorf("%w: start %s from a terminal, or without -i", err, ctr.Name)
			}
		}
		if ctr.Running() {
			// Docker attaches to a container that runs already.
			files, err := g.stdFiles("start -a")
			if err != nil {
				return err
			}
			code, err := m.Attach(ctr, container.AttachOptions{Stdin: files[0], Stdout: files[1], Stderr: files[2],
				NoStdin: !c.Interactive, SigProxy: true, DetachKeys: keys})
			return g.startStatus(code, err)
		}
		code, err := m.Start(ctr, container.StartOptions{
			Stdin: g.Stdin, Stdout: g.Stdout, Stderr: g.Stderr, LogLevel: g.slogLevel(), DetachKeys: keys,
		})
		return g.startStatus(code, err)
	}
	return g.eachContainer(c.Containers, func(m *container.Manager, ctr *container.Container) error {
		if ctr.Running() {
			fmt.Fprintln(g.Stdout, echoRef(c.Containers, ctr))
			return nil
		}
		_, err := m.Start(ctr, container.StartOptions{Detach: true, LogLevel: g.slogLevel()})
		if err != nil {
			return err
		}
		fmt.Fprintln(g.Stdout, echoRef(c.Containers, ctr))
		return nil
	})
}
