package build

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"nook/internal/testutil"
)

func TestParseErrorsNameFileAndLine(t *testing.T) {
	cases := []struct {
		src, want string
	}{
		{"FROM a\nRUN x\nCOPY one\n", "Dockerfile:3: COPY requires at least two arguments"},
		{"FROM a\nBOGUS x\n", "Dockerfile:2: unknown instruction: BOGUS"},
		{"FROM a\nCOPY --nope=1 a b\n", "Dockerfile:2: "},
		{"RUN x\n", "Dockerfile:1: "},
		{"# only a comment\n", "no instructions"},
	}
	for _, c := range cases {
		_, err := parse("Dockerfile", []byte(c.src))
		if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parse(%q) = %v, want ErrSyntax with %q", c.src, err, c.want)
		}
	}
	df, err := parse("Dockerfile", []byte("ARG V=1\nFROM a AS one\nRUN <<EOF\necho hi\nEOF\nFROM one\n"))
	if err != nil || len(df.stages) != 2 || len(df.metaArgs) != 1 {
		t.Fatalf("parse = %+v, %v", df, err)
	}
	if src := df.source(df.stages[0].Commands[0]); !strings.Contains(src, "echo hi") {
		t.Errorf("the cache key's text of a heredoc RUN lacks its body: %q", src)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"FROM a\nRUN b\n", "ARG X=1\nFROM $X AS s\nCOPY --from=s a b\n", "FROM a\nRUN <<EOF\nx\nEOF\n", "FROM a\nCOPY <<F /f\nhi\nF\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		df, err := parse("Dockerfile", []byte(src))
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("error not ErrSyntax: %v", err)
			}
			return
		}
		for _, st := range df.stages {
			for _, c := range st.Commands {
				_ = df.source(c)
			}
		}
	})
}

func TestCleanRel(t *testing.T) {
	for in, want := range map[string]string{
		"/": "", ".": "", "a/b/": "a/b", "/a/../b": "b", "./x": "x", "../x": "../x", "a/../../x": "../x", "..": "..",
	} {
		if got := cleanRel(in); got != want {
			t.Errorf("cleanRel(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestGlobStaysInContext: patterns match component by component, and a
// symlink in the context is never followed out of it.
func TestGlobStaysInContext(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"a/x.txt", "a/y.txt", "a/z.md", "b/x.txt"} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(f)), 0o755)
		os.WriteFile(filepath.Join(dir, f), nil, 0o644)
	}
	os.Symlink("/etc", filepath.Join(dir, "out"))
	tr := dirTree{root: dir}
	for pattern, want := range map[string][]string{
		"a/*.txt": {"a/x.txt", "a/y.txt"}, "*/x.txt": {"a/x.txt", "b/x.txt"}, "a/z.md": {"a/z.md"},
		"nothing": nil, "out/passwd": nil, "out/*": nil,
	} {
		got, err := glob(tr, pattern)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("glob(%q) = %v, %v; want %v", pattern, got, err, want)
		}
	}
	if p, err := tr.resolve("out/passwd"); err == nil && !strings.HasPrefix(filepath.Join(dir, p), dir) {
		t.Errorf("resolve left the context: %s", p)
	}
}

// TestLayerTree reads a stage through its layers: upper files win,
// whiteouts hide, opaque directories stop the search.
func TestLayerTree(t *testing.T) {
	lower, upper := t.TempDir(), t.TempDir()
	for _, f := range []string{"etc/passwd", "gone/file", "opq/old", "keep/low"} {
		os.MkdirAll(filepath.Join(lower, filepath.Dir(f)), 0o755)
		os.WriteFile(filepath.Join(lower, f), []byte("lower"), 0o644)
	}
	os.MkdirAll(filepath.Join(upper, "etc"), 0o755)
	os.WriteFile(filepath.Join(upper, "etc/passwd"), []byte("upper"), 0o644)
	err := unix.Mknod(filepath.Join(upper, "gone"), unix.S_IFCHR, 0)
	testutil.Require(t, err == nil, fmt.Sprintf("cannot make a whiteout here: %v", err))
	os.MkdirAll(filepath.Join(upper, "opq"), 0o755)
	os.WriteFile(filepath.Join(upper, "opq/new"), nil, 0o644)
	err = unix.Setxattr(filepath.Join(upper, "opq"), "user.overlay.opaque", []byte("y"), 0)
	testutil.Require(t, err == nil, fmt.Sprintf("no user xattrs here: %v", err))
	os.MkdirAll(filepath.Join(upper, "keep"), 0o755)
	os.WriteFile(filepath.Join(upper, "keep/up"), nil, 0o644)
	tr := layerTree{dirs: []string{upper, lower}}
	f, err := tr.open("etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 5)
	f.Read(b)
	f.Close()
	if string(b) != "upper" {
		t.Errorf("etc/passwd reads %q, want the upper layer's", b)
	}
	if _, err := tr.lstat("gone/file"); err == nil {
		t.Error("a file under a whiteout is visible")
	}
	if _, err := tr.lstat("opq/old"); err == nil {
		t.Error("a file under an opaque directory is visible")
	}
	for dir, want := range map[string][]string{"": {"etc", "keep", "opq"}, "keep": {"low", "up"}, "opq": {"new"}} {
		if got, err := tr.readDir(dir); err != nil || !slices.Equal(got, want) {
			t.Errorf("readDir(%q) = %v, %v; want %v", dir, got, err, want)
		}
	}
}
