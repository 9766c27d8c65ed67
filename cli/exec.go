package cli

import (
	"nook/container"
)

// ExecCmd is `nook exec`.
type ExecCmd struct {
	Detach      bool           `short:"d" help:"Run in the background."`
	Interactive bool           `short:"i" help:"Pass stdin to the process."`
	Tty         bool           `short:"t" help:"Run on a pseudo-terminal."`
	Env         []string       `short:"e" sep:"none" placeholder:"KEY=VALUE" help:"Set an environment variable."`
	EnvFile     []string       `name:"env-file" sep:"none" type:"path" help:"Read environment variables from a file."`
	Workdir     string         `short:"w" help:"Working directory (default: the container's)."`
	User        string         `short:"u" placeholder:"USER[:GROUP]" help:"User to run as (default: the container's)."`
	Privileged  bool           `help:"Give the process every capability of the user namespace."`
	Container   commandFollows `arg:"" help:"Running container."`
	Command     []string       `arg:"" passthrough:"" help:"Command and arguments."`
}

// Run starts the process and, unless detached, exits with its status.
func (c *ExecCmd) Run(g *Globals) error {
	env, err := readEnvFiles(c.EnvFile)
	if err != nil {
		return err
	}
	if err := container.CheckEnv(c.Env); err != nil {
		return err
	}
	files, err := g.stdFiles("exec")
	if err != nil {
		return err
	}
	m, ctr, err := g.openContainer(string(c.Container))
	if err != nil {
		return err
	}
	code, err := m.Exec(ctr, container.ExecOptions{
		Args: c.Command, Env: append(env, c.Env...), WorkingDir: c.Workdir, User: c.User,
		Tty: c.Tty, Interactive: c.Interactive, Detach: c.Detach, Privileged: c.Privileged,
		Stdin: files[0], Stdout: files[1], Stderr: files[2],
	})
	return g.startStatus(code, err)
}
