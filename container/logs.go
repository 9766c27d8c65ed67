package container

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// logEntry is one line of a container's log, in Docker's json-file format.
type logEntry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// logWriter turns a stream into log entries, one per line; a line longer
// than maxLogLine is split, as Docker does. Writers of several streams
// share one file opened O_APPEND: each entry is a single write, which the
// kernel keeps whole.
type logWriter struct {
	f      *os.File
	stream string
	buf    []byte
}

const maxLogLine = 16 << 10

func newLogWriter(f *os.File, stream string) *logWriter {
	return &logWriter{f: f, stream: stream}
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 && len(w.buf) < maxLogLine {
			return len(p), nil
		}
		n := i + 1
		if i < 0 || n > maxLogLine {
			n = maxLogLine
		}
		w.emit(w.buf[:n])
		w.buf = w.buf[n:]
	}
}

// Close writes a last line that lacked its newline.
func (w *logWriter) Close() {
	if len(w.buf) > 0 {
		w.emit(w.buf)
		w.buf = nil
	}
}

func (w *logWriter) emit(line []byte) {
	b, _ := json.Marshal(logEntry{Log: string(line), Stream: w.stream, Time: time.Now().UTC()})
	_, _ = w.f.Write(append(b, '\n'))
}

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
	f, err := os.Open(filepath.Join(c.dir, logFile))
	if errors.Is(err, os.ErrNotExist) {
		if !c.Running() || !o.Follow {
			return nil
		}
	} else if err != nil {
		return fmt.Errorf("opening the log of %s: %w", c.Name, err)
	}
	var entries []logEntry
	var r *logReader
	if f != nil {
		defer f.Close()
		r = &logReader{r: bufio.NewReader(f)}
		if entries, err = r.entries(); err != nil {
			return err
		}
	}
	if o.Tail >= 0 && len(entries) > o.Tail {
		entries = entries[len(entries)-o.Tail:]
	}
	print := func(e logEntry) {
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
			if f, err = os.Open(filepath.Join(c.dir, logFile)); err == nil {
				defer f.Close()
				r = &logReader{r: bufio.NewReader(f)}
			}
		}
		if r != nil {
			more, err := r.entries()
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

// logReader reads a log that may still grow.
type logReader struct {
	r       *bufio.Reader
	partial []byte // a line not yet complete
}

// entries returns the complete lines read so far.
func (l *logReader) entries() ([]logEntry, error) {
	var out []logEntry
	for {
		chunk, err := l.r.ReadBytes('\n')
		l.partial = append(l.partial, chunk...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("reading log: %w", err)
		}
		var e logEntry
		if json.Unmarshal(l.partial, &e) == nil {
			out = append(out, e)
		}
		l.partial = l.partial[:0]
	}
}
