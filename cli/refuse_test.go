package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nook/rootless"
)

// TestRefusedFlags: flags Docker refuses are refused in one line before
// anything is created: a variable with no name, on the command line ("=x"
// was accepted) and in an --env-file; a mount over the container's own
// /proc or /sys, or inside /proc, as runc's checkProcMount refuses it.
func TestRefusedFlags(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	envFile := filepath.Join(dir, "env")
	if err := os.WriteFile(envFile, []byte("A=1\n=x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"create", "-e", "=x", "img"}, `"=x"`},
		{[]string{"run", "-e", "", "img"}, `""`},
		{[]string{"run", "-e", "A=1", "-e", "=", "img"}, `"="`},
		{[]string{"exec", "-e", "=x", "ctr", "true"}, `"=x"`},
		{[]string{"create", "--env-file", envFile, "img"}, "line 2"},
		{[]string{"exec", "--env-file", envFile, "ctr", "true"}, "line 2"},
		{[]string{"run", "-v", dir + ":/proc", "img"}, "/proc is the container's own"},
		{[]string{"create", "-v", dir + ":/proc/sys/kernel", "img"}, "inside /proc"},
		{[]string{"run", "--mount", "type=bind,src=" + dir + ",dst=/sys", "img"}, "/sys is the container's own"},
		{[]string{"run", "--tmpfs", "/proc", "img"}, "/proc is the container's own"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(append([]string{"--root", store}, tc.args...), strings.NewReader(""), &out, &errb)
			if lines := strings.Split(strings.TrimRight(errb.String(), "\n"), "\n"); code != rootless.ExitSetupFailed || len(lines) != 1 || !strings.Contains(errb.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want 125 and one line naming %s", code, errb.String(), tc.want)
			}
			if _, err := os.Stat(store); err == nil {
				t.Error("the store was created for a refused command")
			}
		})
	}
}
