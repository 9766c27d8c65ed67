package ownerxattr

import (
	"bytes"
	"errors"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		uid, gid uint32
		want     []byte
	}{
		{0, 0, nil},
		{1000, 0, []byte{0x08, 0xe8, 0x07}},
		{0, 5, []byte{0x10, 0x05}},
		{100, 101, []byte{0x08, 0x64, 0x10, 0x65}},
		{1<<32 - 2, 1, []byte{0x08, 0xfe, 0xff, 0xff, 0xff, 0x0f, 0x10, 0x01}},
	} {
		b := Encode(tc.uid, tc.gid)
		if !bytes.Equal(b, tc.want) {
			t.Errorf("Encode(%d, %d) = %x, want %x", tc.uid, tc.gid, b, tc.want)
		}
		u, g, err := Decode(b)
		if err != nil || u != tc.uid || g != tc.gid {
			t.Errorf("Decode(%x) = %d, %d, %v; want %d, %d", b, u, g, err, tc.uid, tc.gid)
		}
	}
}

func TestDecodeRejectsAndSkips(t *testing.T) {
	// An unknown string field 3 is skipped.
	u, g, err := Decode([]byte{0x1a, 0x02, 'h', 'i', 0x08, 0x07})
	if err != nil || u != 7 || g != 0 {
		t.Errorf("unknown field: %d, %d, %v", u, g, err)
	}
	for _, b := range [][]byte{{0x08}, {0x08, 0xff}, {0x1a, 0x05, 'x'}, {0xff}} {
		if _, _, err := Decode(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("Decode(%x) = %v, want ErrMalformed", b, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte{0x08, 0x64, 0x10, 0x65})
	f.Add([]byte{0x1a, 0x02, 'h', 'i'})
	f.Fuzz(func(t *testing.T, b []byte) {
		u, g, err := Decode(b)
		if err != nil {
			return
		}
		u2, g2, err := Decode(Encode(u, g))
		if err != nil || u2 != u || g2 != g {
			t.Fatalf("re-encoding %d:%d gives %d:%d, %v", u, g, u2, g2, err)
		}
	})
}
