// Package ready is the one report a stage that outlives its starter (a
// detached container's shim, `nook mount`'s server) makes once its work is
// set up or has failed, on a pipe the starter waits on. The frames are
// internal/frame's.
//
//	stage (Writer)                             starter (Wait)
//	[msgLog{text}]* ──────────────────────────▶ copied to its logs writer
//	msgOK | msgFailed{int32 code, text} ──────▶ Wait returns nil | *Error
//	pipe closed; later log lines are dropped
//	                 (stage died before reporting: Wait returns ErrNoReport)
package ready

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"nook/internal/frame"
)

const (
	msgLog    = 'L'
	msgOK     = 'K'
	msgFailed = 'E'
	maxFrame  = 1 << 20
)

// ErrNoReport is a stage that ended, or closed the pipe, without a report.
var ErrNoReport = errors.New("the stage ended before reporting")

// Error is a stage's report of a failure; Code is its exit status.
type Error struct {
	Code int
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Writer is the stage's end of the pipe. Write sends log lines until the
// report; it never fails, so a logger may write to it.
type Writer struct {
	mu sync.Mutex
	f  *os.File
}

// NewWriter takes f, which Report closes.
func NewWriter(f *os.File) *Writer { return &Writer{f: f} }

// Write sends b as a log frame, or drops it once the report is made.
func (w *Writer) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f != nil {
		_ = frame.Write(w.f, msgLog, b, maxFrame)
	}
	return len(b), nil
}

// Report sends the outcome: err nil is ready, else the failure and the
// exit status code that goes with it. It closes the pipe; later reports
// do nothing.
func (w *Writer) Report(code int, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return
	}
	if err == nil {
		_ = frame.Write(w.f, msgOK, nil, maxFrame)
	} else {
		msg := err.Error()
		if len(msg) > maxFrame-4 {
			msg = msg[:maxFrame-4]
		}
		p := binary.BigEndian.AppendUint32(nil, uint32(int32(code)))
		_ = frame.Write(w.f, msgFailed, append(p, msg...), maxFrame)
	}
	w.f.Close()
	w.f = nil
}

// Wait reads the stage's report from r, copying its log lines to logs
// (nil drops them): nil when it is ready, *Error when it failed,
// ErrNoReport when it ended first.
func Wait(r io.Reader, logs io.Writer) error {
	for {
		typ, p, err := frame.Read(r, maxFrame)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return ErrNoReport
		}
		if err != nil {
			return fmt.Errorf("reading the stage's report: %w", err)
		}
		switch {
		case typ == msgLog:
			if logs != nil {
				_, _ = logs.Write(p)
			}
		case typ == msgOK:
			return nil
		case typ == msgFailed && len(p) >= 4:
			return &Error{Code: int(int32(binary.BigEndian.Uint32(p))), Msg: string(p[4:])}
		default:
			return fmt.Errorf("reading the stage's report: unexpected message %q", typ)
		}
	}
}
