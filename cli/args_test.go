package cli

import (
	"slices"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// TestCommandFollowsImage checks Docker's reading of run, create and exec:
// flags before the image (the container) are nook's, everything after it
// is the command's, even a flag nook knows. Were commandFollows gone, -w
// would set the working directory and --help would print nook's help.
func TestCommandFollowsImage(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		first   string // the image or container
		cmd     []string
		workdir string
	}{
		{[]string{"run", "img", "-w", "/x", "pwd"}, "img", []string{"-w", "/x", "pwd"}, ""},
		{[]string{"run", "-w", "/y", "img", "-w", "/x"}, "img", []string{"-w", "/x"}, "/y"},
		{[]string{"run", "--entrypoint", "ls", "img", "--version"}, "img", []string{"--version"}, ""},
		{[]string{"run", "--rm", "img", "--help"}, "img", []string{"--help"}, ""},
		{[]string{"run", "img", "--", "a"}, "img", []string{"--", "a"}, ""},
		{[]string{"run", "img"}, "img", nil, ""},
		{[]string{"create", "img", "-it", "sh", "-c", "x"}, "img", []string{"-it", "sh", "-c", "x"}, ""},
		{[]string{"exec", "-w", "/y", "ctr", "-w", "/x", "pwd"}, "ctr", []string{"-w", "/x", "pwd"}, "/y"},
		{[]string{"exec", "ctr", "--help"}, "ctr", []string{"--help"}, ""},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var c CLI
			k, err := kong.New(&c, kong.Exit(func(int) { t.Fatal("kong exited") }))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := k.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			var first string
			var cmd []string
			var workdir string
			switch tc.args[0] {
			case "run":
				first, cmd, workdir = string(c.Run.Image), c.Run.Command, c.Run.Workdir
			case "create":
				first, cmd, workdir = string(c.Create.Image), c.Create.Command, c.Create.Workdir
			case "exec":
				first, cmd, workdir = string(c.Exec.Container), c.Exec.Command, c.Exec.Workdir
			}
			if first != tc.first || !slices.Equal(cmd, tc.cmd) || workdir != tc.workdir {
				t.Errorf("got %q, command %q, -w %q; want %q, %q, %q", first, cmd, workdir, tc.first, tc.cmd, tc.workdir)
			}
		})
	}
}
