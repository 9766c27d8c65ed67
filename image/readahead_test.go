package image

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// TestReadahead: what goes in comes out in order, the source's error
// after its bytes, and Close stops a goroutine its reader left mid-way.
func TestReadahead(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), readaheadChunk/4+3) // several chunks and a tail
	boom := errors.New("connection reset")
	tests := []struct {
		name    string
		src     io.Reader
		want    []byte
		wantErr error
		stopAt  int // read only this much, then Close (0: read to the end)
	}{
		{name: "whole stream", src: bytes.NewReader(data), want: data},
		{name: "one byte at a time", src: iotest.OneByteReader(bytes.NewReader(data)), want: data},
		{name: "empty", src: bytes.NewReader(nil), want: []byte{}},
		{name: "error after bytes", src: io.MultiReader(bytes.NewReader(data[:1000]), iotest.ErrReader(boom)), want: data[:1000], wantErr: boom},
		{name: "reader stops early", src: bytes.NewReader(data), stopAt: 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ra := newReadahead(tc.src)
			if tc.stopAt > 0 {
				b := make([]byte, tc.stopAt)
				if _, err := io.ReadFull(ra, b); err != nil || !bytes.Equal(b, data[:tc.stopAt]) {
					t.Fatalf("first %d bytes: %q, %v", tc.stopAt, b, err)
				}
				ra.Close() // must return although the goroutine waits for a free chunk
				return
			}
			got, err := io.ReadAll(ra)
			ra.Close()
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("error %v, want %v", err, tc.wantErr)
			}
			if !bytes.Equal(got, tc.want) {
				t.Errorf("got %d bytes, want %d (equal prefix: %v)", len(got), len(tc.want), bytes.HasPrefix(tc.want, got))
			}
		})
	}
}
