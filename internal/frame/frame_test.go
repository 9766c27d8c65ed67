package frame

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
)

// TestRoundTripAndLimits: frames of every size class come back as written;
// a payload over the limit is refused on both sides, a stream cut inside a
// frame is io.ErrUnexpectedEOF and one cut between frames io.EOF.
func TestRoundTripAndLimits(t *testing.T) {
	const max = 1 << 16
	var buf bytes.Buffer
	frames := []struct {
		typ byte
		p   []byte
	}{{'a', nil}, {'b', []byte("x")}, {'c', bytes.Repeat([]byte{7}, max)}}
	for _, f := range frames {
		if err := Write(&buf, f.typ, f.p, max); err != nil {
			t.Fatal(err)
		}
	}
	whole := append([]byte(nil), buf.Bytes()...)
	for _, f := range frames {
		typ, p, err := Read(&buf, max)
		if err != nil || typ != f.typ || !bytes.Equal(p, f.p) {
			t.Fatalf("frame %q: got %q, %d bytes, %v", f.typ, typ, len(p), err)
		}
	}
	if _, _, err := Read(&buf, max); err != io.EOF {
		t.Errorf("after the last frame: %v, want io.EOF", err)
	}
	if err := Write(io.Discard, 'd', make([]byte, max+1), max); err == nil {
		t.Error("writing a frame over the limit succeeded")
	}
	hdr := []byte{'e', 0, 0, 0, 0}
	binary.BigEndian.PutUint32(hdr[1:], max+1)
	if _, _, err := Read(bytes.NewReader(hdr), max); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Errorf("reading a frame over the limit: %v", err)
	}
	third := whole[5+6:] // past 'a' (header alone) and 'b' (one byte)
	for _, cut := range []int{3, 7} {
		if _, _, err := Read(bytes.NewReader(third[:cut]), max); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("a stream cut at byte %d: %v, want io.ErrUnexpectedEOF", cut, err)
		}
	}
}

// FuzzRead: whatever a peer sends, reading never panics nor returns a
// payload over the limit.
func FuzzRead(f *testing.F) {
	var seed bytes.Buffer
	_ = Write(&seed, 'i', []byte("input"), 1<<20)
	f.Add(seed.Bytes())
	f.Add([]byte{'r', 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		for {
			_, p, err := Read(r, 1<<20)
			if err != nil {
				return
			}
			if len(p) > 1<<20 {
				t.Fatalf("payload of %d bytes", len(p))
			}
		}
	})
}
