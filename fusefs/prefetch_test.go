package fusefs

import (
	"bytes"
	"context"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// resident counts the pages of p (through the mount) in the page cache,
// by mincore on a mapping that faults nothing in.
func resident(t *testing.T, p string) (in, total int) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() == 0 {
		return 0, 0
	}
	m, err := unix.Mmap(int(f.Fd()), 0, int(fi.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	vec := make([]byte, (len(m)+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
		t.Fatal(e)
	}
	for _, v := range vec {
		if v&1 != 0 {
			in++
		}
	}
	return in, len(vec)
}

// TestPrefetch checks that Prefetch fills the kernel's page cache with the
// file's own bytes, from the top layer, up to the limit asked, without the
// kernel having read anything; and that it refuses what the kernel does
// not know.
func TestPrefetch(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	big := make([]byte, 3*prefetchChunk+5000) // several chunks and a partial page
	rng.Read(big)
	l := newLayout(t, []ent{F("bin/big", string(big)), F("small", "tiny\n"), F("up", "lower\n"), F("empty", ""), D("dir")})
	srv, _ := mountNookServer(t, l, Options{})
	// The upper copy wins once written.
	if err := os.WriteFile(filepath.Join(l.mnt, "up"), []byte("upper copy\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rel   string
		max   int64
		want  []byte
		pages int // resident afterwards
	}{
		{"bin/big", 1 << 30, big, (len(big) + 4095) / 4096},
		{"small", 1 << 30, []byte("tiny\n"), 1},
		{"up", 1 << 30, []byte("upper copy\n"), 1},
		{"empty", 1 << 30, []byte{}, 0},
	} {
		t.Run(tc.rel, func(t *testing.T) {
			p := filepath.Join(l.mnt, tc.rel)
			if _, err := os.Stat(p); err != nil { // the kernel looks it up
				t.Fatal(err)
			}
			n, err := srv.Prefetch(context.Background(), tc.rel, tc.max)
			if err != nil || n != int64(len(tc.want)) {
				t.Fatalf("Prefetch = %d, %v; want %d", n, err, len(tc.want))
			}
			if in, _ := resident(t, p); in != tc.pages {
				t.Errorf("%d pages in the page cache after Prefetch, want %d", in, tc.pages)
			}
			got, err := os.ReadFile(p)
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Errorf("read back %d bytes (%v), not the file's %d", len(got), err, len(tc.want))
			}
		})
	}
	t.Run("limit", func(t *testing.T) {
		l := newLayout(t, []ent{F("big", string(big))})
		srv, _ := mountNookServer(t, l, Options{})
		p := filepath.Join(l.mnt, "big")
		if _, err := os.Stat(p); err != nil {
			t.Fatal(err)
		}
		if in, _ := resident(t, p); in != 0 {
			t.Fatalf("%d pages cached before Prefetch", in)
		}
		if n, err := srv.Prefetch(context.Background(), "big", 8192); err != nil || n != 8192 {
			t.Fatalf("Prefetch = %d, %v; want 8192", n, err)
		}
		if in, _ := resident(t, p); in != 2 {
			t.Errorf("%d pages cached, want the 2 asked for", in)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if n, err := srv.Prefetch(ctx, "big", 1<<30); err != nil || n != 0 {
			t.Errorf("Prefetch with a done context = %d, %v; want 0, nil", n, err)
		}
	})
	for _, rel := range []string{"dir", "never/looked/up", "bin/absent"} {
		if _, err := srv.Prefetch(context.Background(), rel, 1<<20); !errors.Is(err, ErrNotCached) {
			t.Errorf("Prefetch(%q) = %v, want ErrNotCached", rel, err)
		}
	}
}
