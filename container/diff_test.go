package container

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"nook/internal/overlay"
)

// makeTree makes a layer described line by line: "d PATH", "f PATH", "e PATH" (empty), "l PATH
// TARGET", "w PATH" (whiteout), "o PATH" (opaque directory), "m PATH MODE"
// (directory with another mode).
func makeTree(t *testing.T, spec string) string {
	t.Helper()
	root := t.TempDir()
	for _, line := range strings.Split(strings.TrimSpace(spec), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		p := filepath.Join(root, f[1])
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch f[0] {
		case "d":
			err = os.Mkdir(p, 0o755)
		case "m":
			err = os.Mkdir(p, 0o700)
		case "f":
			err = os.WriteFile(p, []byte(f[1]), 0o644)
		case "e":
			err = os.WriteFile(p, nil, 0o644)
		case "l":
			err = os.Symlink(f[2], p)
		case "w":
			err = unix.Mknod(p, unix.S_IFCHR, 0)
		case "o":
			if err = os.Mkdir(p, 0o755); err == nil {
				err = unix.Setxattr(p, overlay.OpaqueXattr, []byte("y"), 0)
			}
		}
		if err != nil {
			t.Fatalf("making %s: %v", line, err)
		}
	}
	return root
}

func TestChanges(t *testing.T) {
	base := `
d bin
f bin/sh
d etc
f etc/passwd
f etc/group
d lib
f lib/a
f lib/b
l usr /
`
	tests := []struct {
		name   string
		lowers []string // top first; base is added below
		upper  string
		want   string
	}{
		{"nothing", nil, "", ""},
		{"added file at root", nil, "f new", "A /new"},
		{"added tree", nil, "d a\nd a/b\nf a/b/c", "A /a\nA /a/b\nA /a/b/c"},
		{"changed file, parent not reported", nil, "d etc\nf etc/passwd", "C /etc/passwd"},
		{"deleted file reports its parent", nil, "d etc\nw etc/passwd", "C /etc\nD /etc/passwd"},
		{"added in existing dir", nil, "d etc\nf etc/new", "C /etc\nA /etc/new"},
		{"parent listed once", nil, "d etc\nw etc/group\nf etc/new\nw etc/passwd", "C /etc\nD /etc/group\nA /etc/new\nD /etc/passwd"},
		{"late parent sorts first", nil, "d etc\nf etc/group\nw etc/passwd", "C /etc\nC /etc/group\nD /etc/passwd"},
		{"directory mode change", nil, "m lib", "C /lib"},
		{"deleted directory", nil, "w lib", "D /lib"},
		{"rm -rf and mkdir: opaque", nil, "o lib\nf lib/c", "C /lib\nA /lib/c"},
		{"opaque hides lower names", nil, "o lib\nf lib/a", "C /lib\nA /lib/a"},
		{"new opaque directory", nil, "o fresh\nf fresh/x", "A /fresh\nA /fresh/x"},
		{"whiteout of nothing", nil, "w ghost", ""},
		{"depth first, names sorted", nil, "d a\nf a/z\nf a.txt\nf b", "A /a\nA /a/z\nA /a.txt\nA /b"},
		{"lower symlink is not followed", nil, "d usr\nf usr/etc", "C /usr\nA /usr/etc"},
		{"mount points left out", nil, "d proc\nd etc\ne etc/hosts", ""},
		{"a full mount point is a change", nil, "d proc\nf proc/x", "A /proc\nA /proc/x"},
		{"file in a higher lower", []string{"d opt\nf opt/x"}, "d opt\nf opt/x", "C /opt/x"},
		{"whiteout in a higher lower", []string{"d etc\nw etc/group"}, "d etc\nf etc/group", "C /etc\nA /etc/group"},
		{"opaque higher lower", []string{"o lib\nf lib/z"}, "d lib\nf lib/a", "C /lib\nA /lib/a"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var lowers []string
			for _, l := range tc.lowers {
				lowers = append(lowers, makeTree(t, l))
			}
			lowers = append(lowers, makeTree(t, base))
			upper := makeTree(t, tc.upper)
			got, err := Changes(upper, lowers, []string{"/proc", "/etc/hosts"})
			if err != nil {
				t.Fatal(err)
			}
			var lines []string
			for _, c := range got {
				lines = append(lines, c.Kind.String()+" "+c.Path)
			}
			var want []string
			if tc.want != "" {
				want = strings.Split(tc.want, "\n")
			}
			if !reflect.DeepEqual(lines, want) {
				t.Errorf("changes:\n got %q\nwant %q", lines, want)
			}
		})
	}
}
