// Package cli is nook's command line: one kong struct per verb, each with a
// Run method that validates its flags, builds the options of a library call
// and reports the result. It makes no system calls of its own.
package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strings"

	"github.com/alecthomas/kong"

	"nook/container/shim"
	"nook/internal/logline"
	"nook/mountd"
	"nook/rootless"
)

// Version is set at build time with -ldflags "-X nook/cli.Version=...".
var Version = "0.1.0-dev"

// Globals are the flags every verb accepts, plus the streams verbs write to.
type Globals struct {
	Root     string           `name:"root" env:"NOOK_ROOT" type:"storeroot" help:"Store directory (default: $XDG_DATA_HOME/nook)."`
	LogLevel string           `name:"log-level" enum:"debug,info,warn,error" default:"warn" help:"Log level on stderr (${enum})."`
	Version  kong.VersionFlag `name:"version" help:"Print the version and exit."`

	Args   []string     `kong:"-"` // as given, for re-running the verb in a namespace
	Stdin  io.Reader    `kong:"-"`
	Stdout io.Writer    `kong:"-"`
	Stderr io.Writer    `kong:"-"`
	Log    *slog.Logger `kong:"-"`
}

// CLI lists the verbs. Only verbs that work are listed.
type CLI struct {
	Globals

	Images    ImagesCmd     `cmd:"" help:"List images."`
	Import    ImportCmd     `cmd:"" help:"Create an image from a root filesystem tar."`
	Inspect   InspectCmd    `cmd:"" help:"Show low-level information on containers and images as JSON."`
	Rmi       RmiCmd        `cmd:"" help:"Remove images."`
	Tag       TagCmd        `cmd:"" help:"Give an image another name."`
	Prune     ImagePruneCmd `cmd:"" help:"Remove dangling images."`
	Image     ImageCmd      `cmd:"" help:"Manage images (ls, rm, tag, inspect, import, prune, save, load)."`
	Info      InfoCmd       `cmd:"" help:"Check this host for rootless containers and show nook's setup."`
	Mount     MountCmd      `cmd:"" help:"Mount a union of layer directories (fuse-overlayfs compatible command line)."`
	Run       RunCmd        `cmd:"" help:"Create and start a container."`
	Create    CreateCmd     `cmd:"" help:"Create a container without starting it."`
	Start     StartCmd      `cmd:"" help:"Start containers."`
	Ps        PsCmd         `cmd:"" help:"List containers."`
	Stop      StopCmd       `cmd:"" help:"Stop containers: the stop signal, then SIGKILL."`
	Kill      KillCmd       `cmd:"" help:"Send a signal to containers."`
	Wait      WaitCmd       `cmd:"" help:"Wait for containers to stop and print their exit codes."`
	Rm        RmCmd         `cmd:"" help:"Remove containers."`
	Logs      LogsCmd       `cmd:"" help:"Print a container's output."`
	Restart   RestartCmd    `cmd:"" help:"Restart containers."`
	Exec      ExecCmd       `cmd:"" help:"Run a command in a running container."`
	Top       TopCmd        `cmd:"" help:"List a container's processes."`
	Attach    AttachCmd     `cmd:"" help:"Attach to a container started with -d (detach with ctrl-p ctrl-q)."`
	Stats     StatsCmd      `cmd:"" help:"Show containers' resource use (from /proc)."`
	Diff      DiffCmd       `cmd:"" help:"List the changes in a container's filesystem."`
	Commit    CommitCmd     `cmd:"" help:"Create an image from a container's changes."`
	Export    ExportCmd     `cmd:"" help:"Write a container's filesystem as a tar archive."`
	Cp        CpCmd         `cmd:"" help:"Copy files between a container and the host."`
	Container ContainerCmd  `cmd:"" help:"Manage containers (ls, inspect, prune, and the verbs above)."`
	Save      SaveCmd       `cmd:"" help:"Save images to a tar archive (Docker's format; or OCI)."`
	Load      LoadCmd       `cmd:"" help:"Load images from a tar archive or an OCI layout directory."`
	Pull      PullCmd       `cmd:"" help:"Download an image from a registry."`
	Push      PushCmd       `cmd:"" help:"Push an image to a registry."`
	Login     LoginCmd      `cmd:"" help:"Log in to a registry."`
	Logout    LogoutCmd     `cmd:"" help:"Log out from a registry."`
	History   HistoryCmd    `cmd:"" help:"Show the steps that made an image."`
	Rename    RenameCmd     `cmd:"" help:"Rename a container."`
	VersionV  VersionCmd    `cmd:"" name:"version" help:"Show nook's version, in docker version's shape."`
	Build     BuildCmd      `cmd:"" help:"Build an image from a Dockerfile."`
	Volume    VolumeCmd     `cmd:"" help:"Manage named volumes (create, ls, inspect, rm, prune)."`
	System    SystemCmd     `cmd:"" help:"Disk usage (df), prune, info."`
	Pause     PauseCmd      `cmd:"" help:"Pause containers (SIGSTOP to their processes)."`
	Unpause   UnpauseCmd    `cmd:"" help:"Resume paused containers."`
}

// ExitError carries an exit status other than nook's own failure (125) to
// main, such as a container's exit code.
type ExitError struct{ Code int }

func (e ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// Stages lists the re-exec stages main hands to rootless.Dispatch.
func Stages() map[string]func() int {
	stages := shim.Stages()
	stages[stageCLI] = func() int { return Main(os.Args[1:]) }
	stages[stageProbeUserNS] = probeUserNSStage
	stages[mountd.StageName] = mountd.Stage
	return stages
}

// Main parses args, runs the verb and returns the process exit code.
func Main(args []string) int {
	return run(args, os.Stdin, os.Stdout, os.Stderr)
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runWith(grammarFor, args, stdin, stdout, stderr)
}

// runWith is run with the grammar chosen by grammar (tests compare
// grammarFor with the whole CLI).
func runWith(grammar func(*CLI, []string) (any, []kong.Option), args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	var c CLI
	exitCode := -1
	model, verb := grammar(&c, args)
	parser, err := kong.New(model, append(verb,
		kong.Name("nook"),
		kong.Description("Run containers as an unprivileged user: Docker's verbs, no daemon, no root."),
		kong.UsageOnError(),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true, NoExpandSubcommands: true}),
		kong.Vars{"version": Version},
		kong.NamedMapper("storeroot", storeRootMapper{}),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { exitCode = code }),
	)...)
	if err != nil {
		fmt.Fprintf(stderr, "nook: %v\n", err)
		return rootless.ExitSetupFailed
	}
	ctx, err := parser.Parse(args)
	if exitCode >= 0 {
		return exitCode
	}
	if err != nil {
		fmt.Fprintf(stderr, "nook: %v\n", err)
		return rootless.ExitSetupFailed
	}
	c.Args, c.Stdin, c.Stdout, c.Stderr = args, stdin, stdout, stderr
	c.Log = newLogger(stderr, c.LogLevel)
	if err := ctx.Run(&c.Globals); err != nil {
		var ee ExitError
		if errors.As(err, &ee) {
			return ee.Code
		}
		fmt.Fprintf(stderr, "nook: %v\n", err)
		return rootless.ExitSetupFailed
	}
	return 0
}

// grammarFor returns what kong builds its model from for args: the globals
// and, as a kong dynamic command, the one verb args name, so an invocation
// pays for one verb's model instead of thirty (kong.New over the whole CLI
// was a third of `nook run`'s own CPU time: reflection and the page faults
// of its allocations). Without a known verb (help, a typo) it is the whole
// CLI, for kong's listing and suggestions.
func grammarFor(c *CLI, args []string) (any, []kong.Option) {
	name, ok := verbOf(args)
	if !ok {
		if slices.Equal(args, []string{"--version"}) {
			return &c.Globals, nil // names no verb: needs none of their models
		}
		return c, nil
	}
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		verb := f.Tag.Get("name")
		if verb == "" {
			verb = strings.ToLower(f.Name)
		}
		if _, isCmd := f.Tag.Lookup("cmd"); isCmd && verb == name {
			return &c.Globals, []kong.Option{kong.DynamicCommand(name, f.Tag.Get("help"), "", v.Field(i).Addr().Interface())}
		}
	}
	return c, nil
}

// verbOf returns the first argument that is not a global flag or its
// value: the verb, if args name one.
func verbOf(args []string) (string, bool) {
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--root" || a == "--log-level":
			i++ // the flag's value
		case a == "--":
			return "", false
		case strings.HasPrefix(a, "-"):
			// --root=X, --log-level=X; any other flag (--help,
			// --version, a typo) gets the whole CLI.
			if !strings.HasPrefix(a, "--root=") && !strings.HasPrefix(a, "--log-level=") {
				return "", false
			}
		default:
			return a, true
		}
	}
	return "", false
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return logline.New(w, l)
}
