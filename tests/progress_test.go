package tests

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestProgress runs the long operations on a terminal: each shows its
// progress there, and none does with -q. (Off a terminal they are quiet,
// which every other test's exact-output checks assert.)
func TestProgress(t *testing.T) {
	e := runEnv(t)
	big := bigRootfs(t, 64<<20)
	dir := t.TempDir()
	archive := filepath.Join(dir, "big-image.tar")
	e.ok(nil, "create", "--name", "c", "bb", "true")
	for _, tc := range []struct {
		word   string
		args   []string
		before []string // run before each: a load of layers the store has reads none
	}{
		{"importing", []string{"import", big, "big"}, nil},
		{"saving", []string{"save", "-o", archive, "big"}, nil},
		{"loading", []string{"load", "-i", archive}, []string{"rmi", "big"}},
		{"exporting", []string{"export", "-o", filepath.Join(dir, "c.tar"), "c"}, nil},
	} {
		t.Run(tc.word, func(t *testing.T) {
			if tc.before != nil {
				e.ok(nil, tc.before...)
			}
			out, code := e.runOnPty("", tc.args...)
			if code != 0 || !strings.Contains(out, tc.word) {
				t.Errorf("nook %v on a terminal: exit %d, %q", tc.args, code, out)
			}
			if tc.before != nil {
				e.ok(nil, tc.before...)
			}
			quiet := append([]string{tc.args[0], "-q"}, tc.args[1:]...)
			if out, code := e.runOnPty("", quiet...); code != 0 || strings.Contains(out, tc.word) {
				t.Errorf("nook %v on a terminal: exit %d, %q", quiet, code, out)
			}
		})
	}
}
