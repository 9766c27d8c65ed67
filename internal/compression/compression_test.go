package compression

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/ulikunitz/xz"
)

// bzip2Hello is `printf 'hello, layer\n' | bzip2 -9`: the standard library
// reads bzip2 but cannot write it, so this one vector is spelled out.
const bzip2Hello = "425a683931415926535986ddac0a0000035180001040042244902020003100302003d21402de58d0bc5dc914e142421b76b028"

const plain = "hello, layer\n"

// compressed returns plain (or data) in format k, built at test time.
func compressed(t testing.TB, k Kind, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	switch k {
	case Bzip2:
		if string(data) != plain {
			t.Fatalf("bzip2 fixture only holds %q", plain)
		}
		b, err := hex.DecodeString(bzip2Hello)
		if err != nil {
			t.Fatal(err)
		}
		return b
	case Xz:
		w, err := xz.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	w, err := NewWriter(&buf, k, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestKindString(t *testing.T) {
	want := map[Kind]string{None: "none", Gzip: "gzip", Zstd: "zstd", Bzip2: "bzip2", Xz: "xz", Kind(42): "compression(42)"}
	for k, s := range want {
		if k.String() != s {
			t.Errorf("Kind(%d).String() = %q, want %q", int(k), k.String(), s)
		}
	}
}

func TestDetectAndDecompress(t *testing.T) {
	for _, k := range []Kind{None, Gzip, Zstd, Bzip2, Xz} {
		t.Run(k.String(), func(t *testing.T) {
			data := compressed(t, k, []byte(plain))
			got, r, err := Detect(bytes.NewReader(data))
			if err != nil || got != k {
				t.Fatalf("Detect = %v, %v; want %v", got, err, k)
			}
			// Detect must not consume: the replay reader yields every byte.
			all, _ := io.ReadAll(r)
			if !bytes.Equal(all, data) {
				t.Fatalf("Detect's reader lost the peeked bytes: %d of %d", len(all), len(data))
			}
			rc, kind, err := Decompress(bytes.NewReader(data))
			if err != nil || kind != k {
				t.Fatalf("Decompress = %v, %v", kind, err)
			}
			out, err := io.ReadAll(rc)
			if err != nil {
				t.Fatal(err)
			}
			if err := rc.Close(); err != nil {
				t.Fatal(err)
			}
			if string(out) != plain {
				t.Fatalf("decompressed %q, want %q", out, plain)
			}
		})
	}
}

func TestDetectShortAndEmpty(t *testing.T) {
	for _, in := range []string{"", "\x1f", "BZ", "ab"} {
		k, r, err := Detect(strings.NewReader(in))
		if err != nil || k != None {
			t.Errorf("Detect(%q) = %v, %v; want none", in, k, err)
		}
		if all, _ := io.ReadAll(r); string(all) != in {
			t.Errorf("Detect(%q) replayed %q", in, all)
		}
	}
}

type failReader struct{}

func (failReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestDetectReadError(t *testing.T) {
	if _, _, err := Detect(failReader{}); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("Detect on failing reader: %v", err)
	}
}

// TestCorruptNamesFormat: a stream whose body is damaged must fail with an
// error naming the decoder, from Decompress or from Read, never silently.
func TestCorruptNamesFormat(t *testing.T) {
	big := bytes.Repeat([]byte("layer data "), 10000)
	for _, k := range []Kind{Gzip, Zstd, Bzip2, Xz} {
		t.Run(k.String(), func(t *testing.T) {
			src := big
			if k == Bzip2 {
				src = []byte(plain)
			}
			data := compressed(t, k, src)
			bad := append([]byte(nil), data...)
			for i := len(bad) / 2; i < len(bad)-2; i++ {
				bad[i] ^= 0x5a
			}
			rc, _, err := Decompress(bytes.NewReader(bad))
			if err == nil {
				_, err = io.ReadAll(rc)
				rc.Close()
			}
			if err == nil {
				t.Fatal("corrupt stream decoded without error")
			}
			if !strings.Contains(err.Error(), k.String()) {
				t.Fatalf("error %q does not name %s", err, k)
			}
			// Truncation too.
			rc, _, err = Decompress(bytes.NewReader(data[:len(data)/2]))
			if err == nil {
				_, err = io.ReadAll(rc)
				rc.Close()
			}
			if err == nil || !strings.Contains(err.Error(), k.String()) {
				t.Fatalf("truncated stream: %v", err)
			}
		})
	}
}

func TestNewWriterLevels(t *testing.T) {
	data := bytes.Repeat([]byte("abcdefgh"), 4096)
	for _, c := range []struct {
		k     Kind
		level int
	}{{Gzip, 1}, {Gzip, 9}, {Zstd, 1}, {Zstd, 19}, {None, 0}} {
		var buf bytes.Buffer
		w, err := NewWriter(&buf, c.k, c.level)
		if err != nil {
			t.Fatalf("%v level %d: %v", c.k, c.level, err)
		}
		w.Write(data)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		rc, kind, err := Decompress(&buf)
		if err != nil || kind != c.k {
			t.Fatalf("%v: Decompress = %v, %v", c.k, kind, err)
		}
		out, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(out, data) {
			t.Fatalf("%v level %d: round trip failed: %v", c.k, c.level, err)
		}
	}
	if _, err := NewWriter(io.Discard, Gzip, 42); err == nil {
		t.Error("gzip level 42 accepted")
	}
	for _, k := range []Kind{Bzip2, Xz} {
		if _, err := NewWriter(io.Discard, k, 0); !errors.Is(err, ErrUnsupported) {
			t.Errorf("NewWriter(%v) = %v, want ErrUnsupported", k, err)
		}
	}
}

// TestConcatenatedGzip: pigz-style multi-member gzip must decode whole.
func TestConcatenatedGzip(t *testing.T) {
	a := compressed(t, Gzip, []byte("first "))
	b := compressed(t, Gzip, []byte("second"))
	rc, _, err := Decompress(bytes.NewReader(append(a, b...)))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	out, _ := io.ReadAll(rc)
	if string(out) != "first second" {
		t.Fatalf("got %q", out)
	}
}

// FuzzDecompress feeds arbitrary bytes: no panic, bounded output, and
// uncompressed input passes through unchanged.
func FuzzDecompress(f *testing.F) {
	for _, k := range []Kind{None, Gzip, Zstd, Bzip2, Xz} {
		d := compressed(f, k, []byte(plain))
		f.Add(d)
		f.Add(d[:len(d)/2])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rc, kind, err := Decompress(bytes.NewReader(data))
		if err != nil {
			return
		}
		defer rc.Close()
		// A small cap: bombs are the decoders' business, and big outputs
		// make each execution (and minimisation) slow.
		out, err := io.ReadAll(io.LimitReader(rc, 1<<20))
		if kind == None && (err != nil || !bytes.Equal(out, data)) {
			t.Fatalf("uncompressed input altered: %v", err)
		}
	})
}

// FuzzRoundTrip: whatever we write, we read back identically.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte(plain), uint8(0))
	f.Add([]byte{}, uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		k := []Kind{Gzip, Zstd}[which%2]
		var buf bytes.Buffer
		w, err := NewWriter(&buf, k, 0)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		rc, got, err := Decompress(&buf)
		if err != nil || got != k {
			t.Fatalf("Decompress = %v, %v", got, err)
		}
		defer rc.Close()
		out, err := io.ReadAll(rc)
		if err != nil || !bytes.Equal(out, data) {
			t.Fatalf("round trip through %v failed: %v", k, err)
		}
	})
}
