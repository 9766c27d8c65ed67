package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Docker's behaviour where a Docker user's hands already go (issue 15):
// one test per item, each failing on the behaviour it replaced.

// TestCommandAfterImage: everything after run's and create's image, and
// after exec's container, is the container's command, even flags nook
// knows (-w, --help, --version), as Docker reads it.
func TestCommandAfterImage(t *testing.T) {
	e := runEnv(t)
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		// -w is the command: not found, and /x is no working directory.
		{[]string{"run", "--rm", "bb", "-w", "/x", "pwd"}, 127, "", `"-w"`},
		{[]string{"run", "--rm", "-w", "/tmp", "bb", "pwd"}, 0, "/tmp\n", ""},
		{[]string{"run", "--rm", "--entrypoint", "echo", "bb", "--version", "-w", "/x"}, 0, "--version -w /x\n", ""},
		{[]string{"run", "--rm", "bb", "--help"}, 127, "", `"--help"`},
		{[]string{"run", "--rm", "bb", "sh", "-c", "echo $0 $1", "-w", "--rm"}, 0, "-w --rm\n", ""},
	} {
		r := e.nook(nil, tc.args...)
		if r.code != tc.code || r.stdout != tc.stdout || !strings.Contains(r.stderr, tc.stderr) {
			t.Errorf("nook %s:\n%s\nwant exit %d, stdout %q, stderr containing %q",
				strings.Join(tc.args, " "), r, tc.code, tc.stdout, tc.stderr)
		}
	}

	e.ok(nil, "create", "--name", "later", "--entrypoint", "echo", "bb", "--help", "-d")
	if got := e.ok(nil, "start", "-a", "later"); got != "--help -d\n" {
		t.Errorf("create's command after the image: start -a printed %q, want %q", got, "--help -d\n")
	}

	e.ok(nil, "run", "-d", "--name", "box", "bb", "sleep", "1000")
	if got := e.ok(nil, "exec", "box", "echo", "-w", "/x", "--help"); got != "-w /x --help\n" {
		t.Errorf("exec box echo -w /x --help printed %q", got)
	}
	if r := e.nook(nil, "exec", "box", "-w", "/", "pwd"); r.code != 127 || r.stdout != "" {
		t.Errorf("exec box -w / pwd: want -w as the command (exit 127):\n%s", r)
	}
}

// TestChangeNotSplit: commit -c and import -c take each value whole, so
// JSON forms with commas work in both (commit split them at commas).
func TestChangeNotSplit(t *testing.T) {
	e := runEnv(t)
	e.ok(nil, "run", "--name", "c1", "bb", "sh", "-c", "echo a,b > /a")
	changes := []string{"-c", `CMD ["cat","/a"]`, "-c", `LABEL x="1,2"`}
	e.ok(nil, append(append([]string{"commit"}, changes...), "c1", "committed")...)
	e.ok(busyboxRootfs(t), append(append([]string{"import"}, changes...), "-", "imported")...)
	for _, ref := range []string{"committed", "imported"} {
		cfg := e.inspectImage(ref)["Config"].(map[string]any)
		if got := fmt.Sprint(cfg["Cmd"], cfg["Labels"]); got != "[cat /a] map[x:1,2]" {
			t.Errorf("%s: Cmd and Labels %s, want [cat /a] map[x:1,2]", ref, got)
		}
	}
	if got := e.ok(nil, "run", "--rm", "committed"); got != "a,b\n" {
		t.Errorf("the committed image's CMD printed %q", got)
	}
}

// TestRelativeVolume: -v ./src:/x and --mount with a relative source bind
// the directory relative to nook's working directory (Docker ≥ 23), not
// "named volumes are not supported".
func TestRelativeVolume(t *testing.T) {
	e := runEnv(t)
	e.dir = t.TempDir()
	if err := os.MkdirAll(filepath.Join(e.dir, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "src", "f"), []byte("host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, flags := range [][]string{
		{"-v", "./src:/x"},
		{"-v", ".:/x:ro", "-w", "/x/src"},
		{"--mount", "type=bind,source=src,target=/x"},
	} {
		args := append(append([]string{"run", "--rm"}, flags...), "bb", "sh", "-c", "cat /x/f 2>/dev/null || cat f")
		if got := e.nook(nil, args...); got.code != 0 || got.stdout != "host\n" {
			t.Errorf("nook %s:\n%s", strings.Join(args, " "), got)
		}
	}
	if r := e.nook(nil, "run", "--rm", "-v", "src:/x", "bb", "true"); r.code != 125 || !strings.Contains(r.stderr, "named volumes") {
		t.Errorf("-v src:/x (a volume's name in Docker): %s", r)
	}
}
