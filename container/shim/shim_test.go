package shim

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAttachFrames round-trips frames of each type and size class, and
// refuses a header announcing more than maxAttachFrame or a cut frame.
func TestAttachFrames(t *testing.T) {
	var buf bytes.Buffer
	frames := []struct {
		typ byte
		p   []byte
	}{{FrameStdout, []byte("out")}, {FrameStderr, nil}, {FrameInput, bytes.Repeat([]byte{7}, 70000)},
		{FrameResize, []byte{0, 24, 0, 80}}}
	for _, f := range frames {
		if err := WriteAttachFrame(&buf, f.typ, f.p); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range frames {
		typ, p, err := ReadAttachFrame(&buf)
		if err != nil || typ != f.typ || !bytes.Equal(p, f.p) {
			t.Fatalf("frame %q: got %q, %d bytes, %v", f.typ, typ, len(p), err)
		}
	}
	if _, _, err := ReadAttachFrame(&buf); err != io.EOF {
		t.Errorf("after the last frame: %v, want EOF", err)
	}

	huge := make([]byte, 5)
	huge[0] = FrameInput
	binary.BigEndian.PutUint32(huge[1:], maxAttachFrame+1)
	if _, _, err := ReadAttachFrame(bytes.NewReader(huge)); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Errorf("oversized frame: %v", err)
	}
	var cut bytes.Buffer
	_ = WriteAttachFrame(&cut, FrameStdout, []byte("abcdef"))
	if _, _, err := ReadAttachFrame(bytes.NewReader(cut.Bytes()[:8])); err != io.ErrUnexpectedEOF {
		t.Errorf("cut frame: %v, want unexpected EOF", err)
	}
}

// TestWriteState replaces state.json whole and leaves no temporary file.
func TestWriteState(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 11, 23, 1, 2, 3, 0, time.UTC)
	for _, st := range []State{{Status: StatusRunning, Pid: 42, StartedAt: start}, {Status: StatusExited, ExitCode: 3, StartedAt: start}} {
		if err := WriteState(dir, st); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, StateFile))
		if err != nil {
			t.Fatal(err)
		}
		var got State
		if err := json.Unmarshal(b, &got); err != nil || got != st {
			t.Errorf("state.json = %+v (%v), want %+v", got, err, st)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("directory holds %d files, want state.json alone", len(ents))
	}
}

// FuzzLogReader: a damaged log (a crash mid-line, a hand edit) yields the
// entries that parse and never panics.
func FuzzLogReader(f *testing.F) {
	f.Add([]byte(`{"log":"a\n","stream":"stdout","time":"2026-11-23T00:00:00Z"}` + "\n"))
	f.Add([]byte("{\"log\":\"cut"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := NewLogReader(bytes.NewReader(b)).Entries(); err != nil {
			t.Fatalf("entries: %v", err)
		}
	})
}
