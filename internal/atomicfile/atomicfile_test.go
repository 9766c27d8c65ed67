package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestWriteFileReplaces(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil || string(got) != "new" {
		t.Fatalf("content = %q, %v; want new", got, err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
}

func TestWriteFailureKeepsOldAndLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	if err := WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := Write(p, 0o644, func(w io.Writer) error {
		_, _ = w.Write([]byte("half"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
	got, _ := os.ReadFile(p)
	if string(got) != "old" {
		t.Errorf("content = %q after failed write, want old", got)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only the target", len(ents))
	}
}

// TestReplace replaces a file whole, leaves no temporary file, and on
// failure leaves nothing behind either.
func TestReplace(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	for _, body := range []string{"first", "second"} {
		if err := Replace(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(p); string(b) != body {
			t.Errorf("content %q, want %q", b, body)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("%d files left, want 1", len(ents))
	}
	if err := Replace(filepath.Join(dir, "missing", "x"), []byte("x"), 0o600); err == nil {
		t.Error("replacing into a missing directory succeeded")
	}
}

// TestWriteLeavesNoNameUntilDone: while fill runs, the directory holds
// nothing new, so a writer killed midway (a `save -o` killed with -9 left
// ".FILE.tmp-N" of up to the archive's size) leaves nothing behind.
func TestWriteLeavesNoNameUntilDone(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.tar")
	err := Write(p, 0o644, func(w io.Writer) error {
		if _, err := w.Write([]byte("data")); err != nil {
			return err
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("while writing, the directory holds %v", ents)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(p); string(got) != "data" {
		t.Errorf("content %q", got)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("after writing, the directory holds %v", ents)
	}
}

// TestWriteClearsDebris: a killed writer's named temporary file (where the
// filesystem has no unnamed files) is removed by the next write to the
// same path; one a live writer holds locked, or another target's, stays.
func TestWriteClearsDebris(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.tar")
	old := time.Now().Add(-time.Hour)
	mk := func(name string) string {
		n := filepath.Join(dir, name)
		if err := os.WriteFile(n, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(n, old, old)
		return n
	}
	dead := mk(".out.tar.tmp-123")
	held := mk(".out.tar.tmp-456")
	other := mk(".other.tmp-789")
	hf, err := os.Open(held)
	if err != nil {
		t.Fatal(err)
	}
	defer hf.Close()
	if err := unix.Flock(int(hf.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(dead); err == nil {
		t.Error("a dead writer's temporary file is still there")
	}
	for _, n := range []string{held, other} {
		if _, err := os.Lstat(n); err != nil {
			t.Errorf("%s was removed: %v", filepath.Base(n), err)
		}
	}
}
