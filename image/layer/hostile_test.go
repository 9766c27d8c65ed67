package layer

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"nook/internal/compression"
	"nook/internal/testutil"
)

// hostileCase is one tar Apply must refuse (want set) or unpack without
// harm (want nil). Fixtures get the sentinel's absolute path so an escape
// would land somewhere the test looks.
type hostileCase struct {
	name    string
	tar     func(t testing.TB, sentinel string) []byte
	want    error
	mention string // the error must contain this (the entry's name)
	check   func(t *testing.T, layer, sentinel string, res ApplyResult)
}

func tarOf(ents ...ent) func(testing.TB, string) []byte {
	return func(t testing.TB, _ string) []byte { return mkTar(t, ents...) }
}

// nulInPAX builds a tar whose PAX path (or linkpath) holds a NUL, which
// archive/tar's writer refuses to produce: it writes a same-length marker
// and patches it in the PAX record afterwards (data blocks carry no
// checksum).
func nulInPAX(t testing.TB, link bool) []byte {
	long := strings.Repeat("n", 120) + "ZQZ"
	e := reg(long, "x", 0o644)
	if link {
		e = symEnt("s", long)
	}
	b := mkTar(t, reg("before", "", 0o644), e)
	return bytes.ReplaceAll(b, []byte("ZQZ"), []byte("Z\x00Z"))
}

func hostileCases() []hostileCase {
	big := strings.Repeat("0123456789", 500)
	return []hostileCase{
		{name: "not a tar", want: ErrCorrupt, mention: "first entry",
			tar: func(testing.TB, string) []byte { return bytes.Repeat([]byte("not a tar "), 200) }},
		{name: "empty input", want: ErrCorrupt, mention: "empty",
			tar: func(testing.TB, string) []byte { return nil }},
		{name: "empty tar stream is a valid empty layer", tar: tarOf(),
			check: func(t *testing.T, layer, _ string, res ApplyResult) {
				if names, _ := os.ReadDir(layer); len(names) != 0 || res.Size != 1024 {
					t.Errorf("empty tar gave %d entries, size %d", len(names), res.Size)
				}
			}},
		{name: "gzip-compressed input", want: ErrCorrupt, mention: "gzip",
			tar: func(t testing.TB, _ string) []byte {
				var buf bytes.Buffer
				w, _ := compression.NewWriter(&buf, compression.Gzip, 0)
				w.Write(mkTar(t, reg("a", "x", 0o644)))
				w.Close()
				return buf.Bytes()
			}},
		{name: "truncated header", want: ErrCorrupt, mention: `after entry "a"`,
			tar: func(t testing.TB, _ string) []byte {
				first := len(mkTar(t, reg("a", "x", 0o644))) - 1024
				return mkTar(t, reg("a", "x", 0o644), reg("b", "y", 0o644))[:first+100]
			}},
		{name: "truncated data", want: ErrCorrupt, mention: `"big"`,
			tar: func(t testing.TB, _ string) []byte {
				b := mkTar(t, reg("big", big, 0o644))
				return b[:len(b)-3000]
			}},
		{name: "header size beyond data", want: ErrCorrupt, mention: `"huge"`,
			tar: func(t testing.TB, _ string) []byte {
				var buf bytes.Buffer
				tw := tar.NewWriter(&buf)
				tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "huge", Size: 1 << 30, Mode: 0o644})
				tw.Write([]byte("only this much"))
				tw.Flush() // refuses (short), but the header and data are in buf
				return append(buf.Bytes(), make([]byte, 2048)...)
			}},
		{name: "absolute name", want: ErrUnsafe, mention: "/pwned",
			tar: func(t testing.TB, s string) []byte { return mkTar(t, reg(s+"/pwned", "x", 0o644)) }},
		{name: "dot-dot name", want: ErrUnsafe, mention: "../sentinel/pwned",
			tar: tarOf(reg("../sentinel/pwned", "x", 0o644))},
		{name: "dot-dot escaping mid-name", want: ErrUnsafe, mention: "a/../../sentinel/pwned",
			tar: tarOf(dirEnt("a/", 0o755), reg("a/../../sentinel/pwned", "x", 0o644))},
		{name: "hardlink to ../", want: ErrUnsafe, mention: `"h"`,
			tar: tarOf(linkEnt("h", "../sentinel/victim"))},
		{name: "hardlink to absolute path", want: ErrUnsafe, mention: `"h"`,
			tar: func(t testing.TB, s string) []byte { return mkTar(t, linkEnt("h", s+"/victim")) }},
		{name: "hardlink to missing target", want: ErrUnsafe, mention: `"h"`,
			tar: tarOf(linkEnt("h", "nothere"))},
		{name: "symlink then file through it", want: ErrUnsafe, mention: "l/pwned",
			tar: func(t testing.TB, s string) []byte { return mkTar(t, symEnt("l", s), reg("l/pwned", "x", 0o644)) }},
		{name: "relative symlink then file through it", want: ErrUnsafe, mention: "l/pwned",
			tar: tarOf(symEnt("l", "../sentinel"), reg("l/pwned", "x", 0o644))},
		{name: "in-layer symlink then file through it", want: ErrUnsafe, mention: "l/x",
			tar: tarOf(dirEnt("d/", 0o755), symEnt("l", "d"), reg("l/x", "x", 0o644))},
		{name: "nested symlink then file through it", want: ErrUnsafe, mention: "a/l/sub/x",
			tar: func(t testing.TB, s string) []byte { return mkTar(t, symEnt("a/l", s), reg("a/l/sub/x", "x", 0o644)) }},
		{name: "symlink then hardlink target through it", want: ErrUnsafe, mention: `"h"`,
			tar: func(t testing.TB, s string) []byte { return mkTar(t, symEnt("l", s), linkEnt("h", "l/victim")) }},
		{name: "symlink then hardlink name through it", want: ErrUnsafe, mention: "l/h",
			tar: func(t testing.TB, s string) []byte {
				return mkTar(t, reg("a", "x", 0o644), symEnt("l", s), linkEnt("l/h", "a"))
			}},
		{name: "symlink then directory through it", want: ErrUnsafe, mention: "l/d",
			tar: func(t testing.TB, s string) []byte { return mkTar(t, symEnt("l", s), dirEnt("l/d/", 0o755)) }},
		{name: "symlink then opaque marker through it", want: ErrUnsafe, mention: "l/.wh..wh..opq",
			tar: func(t testing.TB, s string) []byte {
				return mkTar(t, symEnt("l", s), reg("l/.wh..wh..opq", "", 0o644))
			}},
		{name: "symlink then whiteout through it", want: ErrUnsafe, mention: "l/.wh.victim",
			tar: func(t testing.TB, s string) []byte { return mkTar(t, symEnt("l", s), reg("l/.wh.victim", "", 0o644)) }},
		{name: "whiteout of dot-dot", want: ErrUnsafe, mention: ".wh...",
			tar: tarOf(reg(".wh...", "", 0o644))},
		{name: "whiteout of dot", want: ErrUnsafe, mention: ".wh..",
			tar: tarOf(reg("d/.wh..", "", 0o644))},
		{name: "whiteout of nothing", want: ErrUnsafe, mention: "d/.wh.",
			tar: tarOf(reg("d/.wh.", "", 0o644))},
		// A whiteout is a mark: one with children would store the mark and
		// a literal ".wh.x/" tree.
		{name: "whiteout directory with children", want: ErrUnsafe, mention: ".wh.x/child",
			tar: tarOf(dirEnt(".wh.x/", 0o755), reg(".wh.x/child", "c", 0o644))},
		{name: "child of a whiteout without its directory", want: ErrUnsafe, mention: "d/.wh.x/deep/child",
			tar: tarOf(reg("d/.wh.x/deep/child", "c", 0o644))},
		{name: "child of the opaque marker", want: ErrUnsafe, mention: "d/.wh..wh..opq/child",
			tar: tarOf(dirEnt("d/", 0o755), reg("d/.wh..wh..opq/child", "c", 0o644))},
		{name: "forged opaque xattr", want: ErrUnsafe, mention: `"d"`,
			tar: tarOf(withXattr(dirEnt("d/", 0o755), "user.overlay.opaque", "y"))},
		{name: "forged redirect xattr", want: ErrUnsafe, mention: `"f"`,
			tar: tarOf(withXattr(reg("f", "x", 0o644), "user.overlay.redirect", "/etc"))},
		{name: "NUL in PAX path", want: ErrCorrupt, mention: `after entry "before"`,
			tar: func(t testing.TB, _ string) []byte { return nulInPAX(t, false) }},
		{name: "NUL in PAX linkpath", want: ErrCorrupt, mention: `after entry "before"`,
			tar: func(t testing.TB, _ string) []byte { return nulInPAX(t, true) }},
		{name: "parent is a file", want: ErrCorrupt, mention: "f/x",
			tar: tarOf(reg("f", "x", 0o644), reg("f/x", "y", 0o644))},
		{name: "hardlink to directory", want: ErrCorrupt, mention: `"h"`,
			tar: tarOf(dirEnt("d/", 0o755), linkEnt("h", "d"))},

		// Not refused, but must do no harm.
		{name: "device nodes (and hardlinks to them) are skipped and listed", tar: tarOf(
			ent{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Devmajor: 1, Devminor: 3, Mode: 0o666}},
			ent{hdr: tar.Header{Typeflag: tar.TypeBlock, Name: "dev/sda", Devmajor: 8, Mode: 0o660}},
			ent{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/wh", Mode: 0o600}},
			linkEnt("dev/null2", "dev/null")),
			check: func(t *testing.T, layer, _ string, res ApplyResult) {
				for _, n := range []string{"dev/null", "dev/sda", "dev/wh", "dev/null2"} {
					if !slices.ContainsFunc(res.Skipped, func(s string) bool { return strings.HasPrefix(s, n+": ") }) {
						t.Errorf("Skipped %q does not list %s", res.Skipped, n)
					}
					if _, err := os.Lstat(filepath.Join(layer, n)); !os.IsNotExist(err) {
						t.Errorf("%s was created: %v", n, err)
					}
				}
			}},
		{name: "symlink target is stored, not followed", tar: func(t testing.TB, s string) []byte {
			return mkTar(t, symEnt("l", s+"/victim"))
		}, check: func(t *testing.T, layer, s string, _ ApplyResult) {
			if got, _ := os.Readlink(filepath.Join(layer, "l")); got != s+"/victim" {
				t.Errorf("symlink target %q", got)
			}
		}},
		{name: "file replaces symlink instead of writing through it", tar: func(t testing.TB, s string) []byte {
			return mkTar(t, symEnt("l", s+"/victim"), reg("l", "overwritten", 0o644))
		}, check: wantFile("l", "overwritten")},
		{name: "directory replaces symlink", tar: func(t testing.TB, s string) []byte {
			return mkTar(t, symEnt("l", s), dirEnt("l/", 0o755), reg("l/x", "inside", 0o644))
		}, check: wantFile("l/x", "inside")},
		{name: "hardlink replaces symlink", tar: func(t testing.TB, s string) []byte {
			return mkTar(t, reg("a", "mine", 0o644), symEnt("l", s+"/victim"), linkEnt("l", "a"))
		}, check: wantFile("l", "mine")},
		{name: "whiteout replaces symlink", tar: func(t testing.TB, s string) []byte {
			return mkTar(t, symEnt("l", s+"/victim"), reg(".wh.l", "", 0o644))
		}, check: func(t *testing.T, layer, _ string, _ ApplyResult) {
			if st := lstat(t, filepath.Join(layer, "l")); st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
				t.Errorf("l is not a whiteout: mode %o rdev %d", st.Mode, st.Rdev)
			}
		}},
		{name: "trusted and other xattrs are skipped and listed",
			tar: tarOf(withXattr(withXattr(reg("f", "x", 0o644), "trusted.overlay.opaque", "y"), "security.selinux", "x")),
			check: func(t *testing.T, layer, _ string, res ApplyResult) {
				for _, x := range []string{"trusted.overlay.opaque", "security.selinux"} {
					if !slices.ContainsFunc(res.Skipped, func(s string) bool { return strings.Contains(s, x) }) {
						t.Errorf("Skipped %q does not list %s", res.Skipped, x)
					}
				}
			}},
		{name: "aufs metadata is skipped", tar: tarOf(reg(".wh..wh.plnk/1.2", "", 0o644), reg(".wh..wh.aufs", "", 0o644)),
			check: func(t *testing.T, layer, _ string, res ApplyResult) {
				if names, _ := os.ReadDir(layer); len(res.Skipped) != 2 || len(names) != 0 {
					t.Errorf("Skipped = %q and %d entries created, want both skipped", res.Skipped, len(names))
				}
			}},
	}
}

func wantFile(name, content string) func(*testing.T, string, string, ApplyResult) {
	return func(t *testing.T, layer, _ string, _ ApplyResult) {
		st := lstat(t, filepath.Join(layer, name))
		got, _ := os.ReadFile(filepath.Join(layer, name))
		if st.Mode&unix.S_IFMT != unix.S_IFREG || string(got) != content {
			t.Errorf("%s: mode %o content %q, want a file holding %q", name, st.Mode, got, content)
		}
	}
}

func TestApplyHostile(t *testing.T) {
	for _, c := range hostileCases() {
		t.Run(c.name, func(t *testing.T) {
			layer, sentinel := layout(t)
			before := snapshot(t, sentinel, true)
			res, err := Apply(bytes.NewReader(c.tar(t, sentinel)), layer, ApplyOptions{Chown: os.Geteuid() == 0})
			switch {
			case c.want == nil && err != nil:
				t.Fatalf("Apply: %v", err)
			case c.want != nil && !errors.Is(err, c.want):
				t.Fatalf("Apply error = %v, want %v", err, c.want)
			case c.want != nil && !strings.Contains(err.Error(), c.mention):
				t.Fatalf("error %q does not mention %q", err, c.mention)
			}
			if c.want != nil {
				t.Logf("refused: %v", err)
			}
			assertUntouched(t, layer, sentinel, before)
			if c.check != nil {
				c.check(t, layer, sentinel, res)
			}
		})
	}
}

// assertUntouched checks that nothing beside layer changed: the sentinel
// tree is as it was and its parent holds only layer and sentinel.
func assertUntouched(t testing.TB, layer, sentinel, before string) {
	t.Helper()
	if after := snapshot(t, sentinel, true); after != before {
		t.Fatalf("sentinel changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	entries, err := os.ReadDir(filepath.Dir(layer))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		names := []string{}
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("something appeared beside the layer: %v", names)
	}
}

func TestCleanName(t *testing.T) {
	for in, want := range map[string]string{"./": ".", "": ".", "./a/b/": "a/b", "a//b": "a/b", "a/../b": "b", ".": "."} {
		if got, err := cleanName(in); err != nil || got != want {
			t.Errorf("cleanName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"/a", "..", "../a", "a/../..", "a\x00b", "//a"} {
		if _, err := cleanName(in); !errors.Is(err, ErrUnsafe) {
			t.Errorf("cleanName(%q) = %v, want ErrUnsafe", in, err)
		}
	}
}

// FuzzApply: arbitrary bytes never panic and never change anything
// outside the target directory.
func FuzzApply(f *testing.F) {
	for _, c := range hostileCases() {
		f.Add(c.tar(f, "/tmp/nook-fuzz-sentinel"))
	}
	f.Add(goodTar(f))
	// A sparse entry claiming a petabyte with one byte of data: its cost
	// must follow the data, so the fuzzer needs no size limit.
	f.Add(testutil.SparseTar("sparse", 1<<50, 1<<49, "x"))
	f.Fuzz(func(t *testing.T, data []byte) {
		layer, sentinel := layout(t)
		before := snapshot(t, sentinel, true)
		_, err := Apply(bytes.NewReader(data), layer, ApplyOptions{Chown: os.Geteuid() == 0})
		if err != nil && !errors.Is(err, ErrUnsafe) && !errors.Is(err, ErrCorrupt) {
			t.Logf("other error: %v", err)
		}
		assertUntouched(t, layer, sentinel, before)
	})
}
