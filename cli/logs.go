package cli

import (
	"fmt"
	"strconv"
	"time"

	"nook/container"
)

// LogsCmd is `nook logs`.
type LogsCmd struct {
	Follow     bool   `short:"f" help:"Keep printing until the container stops."`
	Tail       string `short:"n" default:"all" help:"Lines to show from the end, or all."`
	Since      string `help:"Only entries since this time (RFC 3339) or duration ago (10m)."`
	Timestamps bool   `short:"t" help:"Prefix each line with its time."`
	Container  string `arg:"" help:"Container."`
}

// Run prints the container's log, stdout and stderr each to its own.
func (c *LogsCmd) Run(g *Globals) error {
	o := container.LogOptions{Follow: c.Follow, Tail: -1, Timestamps: c.Timestamps}
	if c.Tail != "all" {
		n, err := strconv.Atoi(c.Tail)
		if err != nil {
			return fmt.Errorf("--tail %q: want a number or all", c.Tail)
		}
		o.Tail = n
	}
	if c.Since != "" {
		if d, err := time.ParseDuration(c.Since); err == nil {
			o.Since = time.Now().Add(-d)
		} else if t, err := time.Parse(time.RFC3339Nano, c.Since); err == nil {
			o.Since = t
		} else {
			return fmt.Errorf("--since %q: want a duration (10m) or an RFC 3339 time", c.Since)
		}
	}
	m, ctr, err := g.openContainer(c.Container)
	if err != nil {
		return err
	}
	return m.Logs(ctr, g.Stdout, g.Stderr, o)
}
