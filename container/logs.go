package container

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"nook/container/shim"
)

// LogOptions select what Logs prints.
type LogOptions struct {
	Follow     bool
	Tail       int // last N lines; negative means all
	Since      time.Time
	Timestamps bool
}

// Logs copies a container's log to stdout and stderr, each stream to its
// own. With Follow it keeps reading until the container stops.
func (m *Manager) Logs(c *Container, stdout, stderr io.Writer, o LogOptions) error {
	f, err := c.fs.Open(c.file(shim.LogFile))
	if errors.Is(err, os.ErrNotExist) {
		if !c.Running() || !o.Follow {
			return nil
		}
	} else if err != nil {
		return fmt.Errorf("opening the log of %s: %w", c.Name, err)
	}
	var entries []shim.LogEntry
	var r *shim.LogReader
	if f != nil {
		defer f.Close()
		r = shim.NewLogReader(f)
		if entries, err = r.Entries(); err != nil {
			return err
		}
	}
	if o.Tail >= 0 && len(entries) > o.Tail {
		entries = entries[len(entries)-o.Tail:]
	}
	print := func(e shim.LogEntry) {
		if !o.Since.IsZero() && e.Time.Before(o.Since) {
			return
		}
		w := stdout
		if e.Stream == "stderr" {
			w = stderr
		}
		if o.Timestamps {
			fmt.Fprintf(w, "%s %s", e.Time.Format(time.RFC3339Nano), e.Log)
			return
		}
		_, _ = io.WriteString(w, e.Log)
	}
	for _, e := range entries {
		print(e)
	}
	if !o.Follow {
		return nil
	}
	for {
		running := c.shimAlive()
		if r == nil {
			if f, err = c.fs.Open(c.file(shim.LogFile)); err == nil {
				defer f.Close()
				r = shim.NewLogReader(f)
			}
		}
		if r != nil {
			more, err := r.Entries()
			if err != nil {
				return err
			}
			for _, e := range more {
				print(e)
			}
		}
		if !running {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
}
