package container

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseDetachKeys(t *testing.T) {
	tests := []struct {
		in   string
		want []byte
		err  bool
	}{
		{"ctrl-p,ctrl-q", []byte{0x10, 0x11}, false},
		{"ctrl-a,x", []byte{0x01, 'x'}, false},
		{"ctrl-@,ctrl-[,ctrl-_", []byte{0x00, 0x1b, 0x1f}, false},
		{"CTRL-Z", []byte{0x1a}, false},
		{"ctrl-1", nil, true},
		{"ab", nil, true},
		{"", nil, true},
	}
	for _, tt := range tests {
		got, err := ParseDetachKeys(tt.in)
		if !bytes.Equal(got, tt.want) || (err != nil) != tt.err {
			t.Errorf("ParseDetachKeys(%q) = %v, %v; want %v (error %v)", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestCopyInputDetach(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		keys   []byte
		tty    bool
		sent   string
		detach bool
	}{
		{"default keys", "ab\x10\x11cd", DefaultDetachKeys, true, "ab", true},
		{"a lone ctrl-p passes", "a\x10b", DefaultDetachKeys, true, "a\x10b", false},
		{"ctrl-p twice then q", "\x10\x10\x11", DefaultDetachKeys, true, "\x10", true},
		{"other keys", "x\x01\x10\x11y\x01x", []byte{0x01, 'x'}, true, "x\x01\x10\x11y", true},
		{"three keys, a false start", "\x01\x02\x01\x02\x03", []byte{1, 2, 3}, true, "\x01\x02", true},
		{"held keys at the end are sent", "a\x10", DefaultDetachKeys, true, "a\x10", false},
		{"no terminal: no detach", "a\x10\x11b", DefaultDetachKeys, false, "a\x10\x11b", false},
	}
	for _, tt := range tests {
		var sent bytes.Buffer
		// One byte per read: held keys cross reads.
		r := &oneByteReader{strings.NewReader(tt.in)}
		detach := copyInput(r, func(p []byte) error { sent.Write(p); return nil }, tt.tty, tt.keys)
		if detach != tt.detach || sent.String() != tt.sent {
			t.Errorf("%s: sent %q, detach %v; want %q, %v", tt.name, sent.String(), detach, tt.sent, tt.detach)
		}
	}
}

type oneByteReader struct{ r *strings.Reader }

func (o *oneByteReader) Read(p []byte) (int, error) { return o.r.Read(p[:1]) }

func FuzzParseDetachKeys(f *testing.F) {
	for _, s := range []string{"ctrl-p,ctrl-q", "ctrl-a,x", "a", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		keys, err := ParseDetachKeys(s)
		if err == nil && len(keys) != strings.Count(s, ",")+1 {
			t.Errorf("ParseDetachKeys(%q) = %v: one key per item", s, keys)
		}
	})
}
