package container

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nook/container/shim"
)

func TestLogRoundTrip(t *testing.T) {
	dir := t.TempDir()
	f, err := os.OpenFile(filepath.Join(dir, shim.LogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	out, errw := shim.NewLogWriter(f, "stdout"), shim.NewLogWriter(f, "stderr")
	long := strings.Repeat("x", shim.MaxLogLine+10)
	for _, w := range []struct {
		w *shim.LogWriter
		s string
	}{{out, "one\ntw"}, {errw, "err line\n"}, {out, "o\n"}, {out, long}, {out, "\nlast"}} {
		if _, err := w.w.Write([]byte(w.s)); err != nil {
			t.Fatal(err)
		}
	}
	out.Close()
	errw.Close()
	f.Close()
	m := &Manager{}
	r, err := os.OpenRoot(filepath.Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c := &Container{dir: dir, fs: r}
	var so, se bytes.Buffer
	if err := m.Logs(c, &so, &se, LogOptions{Tail: -1}); err != nil {
		t.Fatal(err)
	}
	if want := "one\ntwo\n" + long + "\nlast"; so.String() != want {
		t.Errorf("stdout = %q…, want %q…", trunc(so.String()), trunc(want))
	}
	if se.String() != "err line\n" {
		t.Errorf("stderr = %q", se.String())
	}
	so.Reset()
	se.Reset()
	if err := m.Logs(c, &so, &se, LogOptions{Tail: 2}); err != nil {
		t.Fatal(err)
	}
	// The long line was split in two entries: "x…" and "xxx…\n"; tail 2 is
	// its second half and "last".
	if so.String() != strings.Repeat("x", 10)+"\nlast" {
		t.Errorf("tail 2 = %q", trunc(so.String()))
	}
}

func trunc(s string) string {
	if len(s) > 60 {
		return s[:30] + "…" + s[len(s)-30:]
	}
	return s
}
