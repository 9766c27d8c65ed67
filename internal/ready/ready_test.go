package ready

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// TestReport: what a stage writes is what its starter reads — log lines
// copied out in order, then ready or the failure with its code; a stage
// that closes the pipe without a report is ErrNoReport; nothing written
// after the report reaches the starter.
func TestReport(t *testing.T) {
	cases := []struct {
		name     string
		write    func(w *Writer)
		wantLogs string
		wantErr  error
	}{
		{"ready", func(w *Writer) { w.Report(0, nil) }, "", nil},
		{"logs then ready", func(w *Writer) {
			_, _ = w.Write([]byte("one\n"))
			_, _ = w.Write([]byte("two\n"))
			w.Report(0, nil)
			_, _ = w.Write([]byte("dropped\n"))
		}, "one\ntwo\n", nil},
		{"failed", func(w *Writer) { w.Report(127, errors.New("no such file: /bin/x y")) }, "",
			&Error{Code: 127, Msg: "no such file: /bin/x y"}},
		{"no report", func(w *Writer) { _, _ = w.Write([]byte("dying\n")); w.f.Close(); w.f = nil }, "dying\n", ErrNoReport},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, wf, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			w := NewWriter(wf)
			go c.write(w)
			var logs strings.Builder
			err = Wait(r, &logs)
			if got := logs.String(); got != c.wantLogs {
				t.Errorf("logs = %q, want %q", got, c.wantLogs)
			}
			var want *Error
			switch {
			case errors.As(c.wantErr, &want):
				var got *Error
				if !errors.As(err, &got) {
					t.Fatalf("Wait = %v, want %#v", err, want)
				}
				if *got != *want {
					t.Errorf("Wait = %#v, want %#v", *got, *want)
				}
			case !errors.Is(err, c.wantErr):
				t.Errorf("Wait = %v, want %v", err, c.wantErr)
			}
		})
	}
}
