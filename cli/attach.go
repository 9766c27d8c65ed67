package cli

import (
	"fmt"

	"nook/container"
)

// AttachCmd is `nook attach`.
type AttachCmd struct {
	NoStdin    bool   `name:"no-stdin" help:"Do not pass stdin."`
	SigProxy   bool   `name:"sig-proxy" default:"true" negatable:"" help:"Pass signals on to the container (without a terminal)."`
	DetachKeys string `name:"detach-keys" placeholder:"KEYS" help:"Keys that detach from the container (default ctrl-p,ctrl-q)."`
	Container  string `arg:"" help:"Running container started with -d."`
}

// Run attaches until the container stops (exiting with its status) or
// until ctrl-p ctrl-q.
func (c *AttachCmd) Run(g *Globals) error {
	files, err := g.stdFiles("attach")
	if err != nil {
		return err
	}
	keys, err := detachKeys(c.DetachKeys)
	if err != nil {
		return err
	}
	m, ctr, err := g.openContainer(c.Container)
	if err != nil {
		return err
	}
	if !c.NoStdin {
		if err := container.CheckInputTTY(ctr, files[0]); err != nil {
			return fmt.Errorf("%w: attach to %s from a terminal, or with --no-stdin", err, ctr.Name)
		}
	}
	code, err := m.Attach(ctr, container.AttachOptions{
		Stdin: files[0], Stdout: files[1], Stderr: files[2], NoStdin: c.NoStdin, SigProxy: c.SigProxy,
		DetachKeys: keys,
	})
	return g.startStatus(code, err)
}

// detachKeys reads --detach-keys; "" is Docker's default.
func detachKeys(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	return container.ParseDetachKeys(s)
}
