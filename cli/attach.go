package cli

import (
	"errors"
	"fmt"

	"nook/container"
)

// AttachCmd is `nook attach`.
type AttachCmd struct {
	NoStdin   bool   `name:"no-stdin" help:"Do not pass stdin."`
	SigProxy  bool   `name:"sig-proxy" default:"true" negatable:"" help:"Pass signals on to the container (without a terminal)."`
	Container string `arg:"" help:"Running container started with -d."`
}

// Run attaches until the container stops (exiting with its status) or
// until ctrl-p ctrl-q.
func (c *AttachCmd) Run(g *Globals) error {
	files, err := g.stdFiles("attach")
	if err != nil {
		return err
	}
	m, ctr, err := g.openContainer(c.Container)
	if err != nil {
		return err
	}
	code, err := m.Attach(ctr, container.AttachOptions{
		Stdin: files[0], Stdout: files[1], Stderr: files[2], NoStdin: c.NoStdin, SigProxy: c.SigProxy,
	})
	if errors.Is(err, container.ErrDetached) {
		fmt.Fprintln(g.Stderr, "read escape sequence")
		return nil
	}
	return g.startStatus(code, err)
}
