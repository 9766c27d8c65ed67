package cli

import (
	"errors"
	"fmt"
	"os"

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
	files := [3]*os.File{}
	for i, s := range []any{g.Stdin, g.Stdout, g.Stderr} {
		f, ok := s.(*os.File)
		if !ok {
			return fmt.Errorf("attach needs its standard streams to be files")
		}
		files[i] = f
	}
	m, err := g.openContainers()
	if err != nil {
		return err
	}
	ctr, err := m.Get(c.Container)
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
