package shim

// The container's log, in Docker's json-file format: the shim writes it,
// `nook logs` reads it.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"
)

// LogEntry is one line of a container's log, in Docker's json-file format.
type LogEntry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// LogWriter turns a stream into log entries, one per line; a line longer
// than MaxLogLine is split, as Docker does. Writers of several streams
// share one file opened O_APPEND: each entry is a single write, which the
// kernel keeps whole.
type LogWriter struct {
	f      *os.File
	stream string
	buf    []byte
}

// MaxLogLine is the longest line an entry holds.
const MaxLogLine = 16 << 10

// NewLogWriter writes the stream named stream ("stdout", "stderr") to f.
func NewLogWriter(f *os.File, stream string) *LogWriter {
	return &LogWriter{f: f, stream: stream}
}

func (w *LogWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 && len(w.buf) < MaxLogLine {
			return len(p), nil
		}
		n := i + 1
		if i < 0 || n > MaxLogLine {
			n = MaxLogLine
		}
		w.emit(w.buf[:n])
		w.buf = w.buf[n:]
	}
}

// Close writes a last line that lacked its newline.
func (w *LogWriter) Close() {
	if len(w.buf) > 0 {
		w.emit(w.buf)
		w.buf = nil
	}
}

func (w *LogWriter) emit(line []byte) {
	b, _ := json.Marshal(LogEntry{Log: string(line), Stream: w.stream, Time: time.Now().UTC()})
	_, _ = w.f.Write(append(b, '\n'))
}

// LogReader reads a log that may still grow.
type LogReader struct {
	r       *bufio.Reader
	partial []byte // a line not yet complete
}

// NewLogReader reads the log from r.
func NewLogReader(r io.Reader) *LogReader { return &LogReader{r: bufio.NewReader(r)} }

// Entries returns the complete lines read so far.
func (l *LogReader) Entries() ([]LogEntry, error) {
	var out []LogEntry
	for {
		chunk, err := l.r.ReadBytes('\n')
		l.partial = append(l.partial, chunk...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("reading log: %w", err)
		}
		var e LogEntry
		if json.Unmarshal(l.partial, &e) == nil {
			out = append(out, e)
		}
		l.partial = l.partial[:0]
	}
}
