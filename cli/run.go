package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"nook/container"
	"nook/rootless"
)

// createFlags are the flags `create` and `run` share.
type createFlags struct {
	Interactive bool     `short:"i" help:"Keep stdin open and pass it to the container."`
	Tty         bool     `short:"t" help:"Run the command on a pseudo-terminal."`
	Rm          bool     `help:"Remove the container when it exits."`
	Name        string   `help:"Name of the container."`
	Env         []string `short:"e" sep:"none" placeholder:"KEY=VALUE" help:"Set an environment variable (KEY alone takes this shell's value)."`
	EnvFile     []string `name:"env-file" sep:"none" type:"path" help:"Read environment variables from a file, one KEY=VALUE per line."`
	Workdir     string   `short:"w" help:"Working directory inside the container."`
	User        string   `short:"u" placeholder:"USER[:GROUP]" help:"User to run as, by name or id."`
	Entrypoint  *string  `help:"Replace the image's entrypoint (\"\" clears it)."`
	Volume      []string `short:"v" sep:"none" placeholder:"HOST:CONTAINER[:ro]" help:"Bind a host path into the container."`
	Mount       []string `sep:"none" placeholder:"type=bind|tmpfs,..." help:"Mount a bind or tmpfs (Docker's --mount syntax)."`
	Tmpfs       []string `sep:"none" placeholder:"PATH[:OPTIONS]" help:"Mount a tmpfs."`
	ReadOnly    bool     `name:"read-only" help:"Mount the container's root read-only."`
	Hostname    string   `help:"Host name inside the container."`
	Network     string   `aliases:"net" default:"host" help:"Network: host (the host's) or none (loopback only)."`
	StopSignal  string   `name:"stop-signal" help:"Signal that stops the container (default: the image's, else SIGTERM)."`
	StopTimeout *int     `name:"stop-timeout" help:"Seconds stop waits before SIGKILL (default 10)."`
	Cidfile     string   `type:"path" help:"Write the container id to this file."`
	Label       []string `short:"l" sep:"none" placeholder:"KEY=VALUE" help:"Set a label on the container."`

	Image   commandFollows `arg:"" help:"Image to run."`
	Command []string       `arg:"" optional:"" passthrough:"" help:"Command and arguments (default: the image's); everything after the image is the command's."`
}

// options turns the flags into container.CreateOptions.
func (f *createFlags) options() (container.CreateOptions, error) {
	o := container.CreateOptions{
		Image: string(f.Image), Name: f.Name, Cmd: f.Command, Entrypoint: f.Entrypoint,
		WorkingDir: f.Workdir, User: f.User, Hostname: f.Hostname, Network: f.Network,
		ReadOnly: f.ReadOnly, Tty: f.Tty, OpenStdin: f.Interactive, AutoRemove: f.Rm,
		StopSignal: f.StopSignal, StopTimeout: f.StopTimeout,
	}
	fileEnv, err := readEnvFiles(f.EnvFile)
	if err != nil {
		return o, err
	}
	o.Env = append(fileEnv, f.Env...)
	for _, v := range f.Volume {
		m, err := container.ParseVolume(v)
		if err != nil {
			return o, err
		}
		o.Mounts = append(o.Mounts, m)
	}
	for _, v := range f.Mount {
		m, err := container.ParseMount(v)
		if err != nil {
			return o, err
		}
		o.Mounts = append(o.Mounts, m)
	}
	for _, v := range f.Tmpfs {
		m, err := container.ParseTmpfs(v)
		if err != nil {
			return o, err
		}
		o.Mounts = append(o.Mounts, m)
	}
	for _, l := range f.Label {
		k, v, _ := strings.Cut(l, "=")
		if o.Labels == nil {
			o.Labels = map[string]string{}
		}
		o.Labels[k] = v
	}
	return o, nil
}

// create makes the container and writes --cidfile.
func (f *createFlags) create(g *Globals) (*container.Manager, *container.Container, error) {
	m, o, err := f.prepare(g)
	if err != nil {
		return nil, nil, err
	}
	c, err := m.Create(o)
	if err != nil {
		return nil, nil, err
	}
	if err := f.writeCidfile(c); err != nil {
		return nil, nil, err
	}
	return m, c, nil
}

// prepare checks the flags and opens the containers.
func (f *createFlags) prepare(g *Globals) (*container.Manager, container.CreateOptions, error) {
	o, err := f.options()
	if err != nil {
		return nil, o, err
	}
	if f.Cidfile != "" {
		if _, err := os.Stat(f.Cidfile); err == nil {
			return nil, o, fmt.Errorf("container id file %s exists already", f.Cidfile)
		}
	}
	m, err := g.openContainers()
	return m, o, err
}

// writeCidfile writes the container's id to --cidfile, if given.
func (f *createFlags) writeCidfile(c *container.Container) error {
	if f.Cidfile == "" {
		return nil
	}
	if err := os.WriteFile(f.Cidfile, []byte(c.ID), 0o644); err != nil {
		return fmt.Errorf("writing container id file: %w", err)
	}
	return nil
}

// RunCmd is `nook run`: create a container and start it.
type RunCmd struct {
	Detach bool `short:"d" help:"Run in the background and print the container id."`
	createFlags
}

// Run creates and starts the container; in the foreground nook exits with
// the container's status.
func (c *RunCmd) Run(g *Globals) error {
	rootless.Trace("cli parsed")
	m, o, err := c.prepare(g)
	if err != nil {
		return err
	}
	ctr, code, err := m.Run(o, container.StartOptions{
		Detach: c.Detach, Stdin: g.Stdin, Stdout: g.Stdout, Stderr: g.Stderr, LogLevel: g.slogLevel(),
	}, c.writeCidfile)
	rootless.Trace("cli started")
	if ctr == nil {
		return err
	}
	if err == nil && c.Detach {
		fmt.Fprintln(g.Stdout, ctr.ID)
	}
	var se *container.StartError
	if err != nil && c.Rm && !errors.As(err, &se) {
		// The shim never ran, so nobody else removes it.
		_ = m.Remove(ctr, true)
	}
	return g.startStatus(code, err)
}

// CreateCmd is `nook create`.
type CreateCmd struct {
	createFlags
}

// Run creates the container and prints its id.
func (c *CreateCmd) Run(g *Globals) error {
	_, ctr, err := c.create(g)
	if err != nil {
		return err
	}
	fmt.Fprintln(g.Stdout, ctr.ID)
	return nil
}
