package cli

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"nook/rootless"
)

// TestStoreRoot: an empty --root or NOOK_ROOT is refused in one line
// (kong's path type read it as the working directory and a store appeared
// there); a relative one is made absolute at parse time, which info shows.
func TestStoreRoot(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, tc := range []struct {
		name string
		env  *string
		args []string
		want string // on stderr, one line
	}{
		{"empty flag", nil, []string{"--root", "", "images"}, "--root: the store directory is empty"},
		{"empty flag with =", nil, []string{"--root=", "images"}, "--root: the store directory is empty"},
		{"empty variable", ptr(""), []string{"images"}, `NOOK_ROOT=""`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env != nil {
				t.Setenv("NOOK_ROOT", *tc.env)
			}
			var out, errb bytes.Buffer
			code := run(tc.args, strings.NewReader(""), &out, &errb)
			if lines := strings.Split(strings.TrimRight(errb.String(), "\n"), "\n"); code != rootless.ExitSetupFailed || len(lines) != 1 || !strings.Contains(errb.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want 125 and one line with %q", code, errb.String(), tc.want)
			}
			if m, _ := filepath.Glob(filepath.Join(dir, "*")); len(m) != 0 {
				t.Errorf("a refused root left %v in the working directory", m)
			}
		})
	}
	t.Run("relative", func(t *testing.T) {
		var out, errb bytes.Buffer
		run([]string{"--root", "rel/store", "info"}, strings.NewReader(""), &out, &errb)
		if want := "(store " + filepath.Join(dir, "rel/store"); !strings.Contains(out.String()+errb.String(), want) {
			t.Errorf("info does not show the absolute root %q:\n%s%s", want, out.String(), errb.String())
		}
	})
}

func ptr[T any](v T) *T { return &v }
