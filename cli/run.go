package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	units "github.com/docker/go-units"

	"nook/container"
	"nook/image"
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
	Volume      []string `short:"v" sep:"none" placeholder:"[HOST|VOLUME:]CONTAINER[:ro]" help:"Bind a host path (/abs or ./rel) or a named volume into the container; a container path alone gets an anonymous volume."`
	Mount       []string `sep:"none" placeholder:"type=bind|volume|tmpfs,..." help:"Mount a bind, named volume or tmpfs (Docker's --mount syntax)."`
	Tmpfs       []string `sep:"none" placeholder:"PATH[:OPTIONS]" help:"Mount a tmpfs."`
	ReadOnly    bool     `name:"read-only" help:"Mount the container's root read-only."`
	Init        bool     `help:"Run an init as pid 1 that reaps processes and forwards signals to the command."`
	Hostname    string   `help:"Host name inside the container."`
	Network     string   `aliases:"net" default:"host" help:"Network: host (the host's) or none (loopback only)."`
	StopSignal  string   `name:"stop-signal" help:"Signal that stops the container (default: the image's, else SIGTERM)."`
	StopTimeout *int     `name:"stop-timeout" help:"Seconds stop waits before SIGKILL (default 10)."`
	Cidfile     string   `type:"path" help:"Write the container id to this file."`
	Label       []string `short:"l" sep:"none" placeholder:"KEY=VALUE" help:"Set a label on the container."`
	SecurityOpt []string `name:"security-opt" sep:"none" placeholder:"OPT" help:"seccomp=FILE (a profile in Docker's JSON format) or seccomp=unconfined (default: Docker's profile); no-new-privileges: no process of the container gains privileges through exec."`
	Pull        string   `enum:"missing,always,never" default:"missing" help:"Pull the image first: missing (when the store lacks it), always, never."`
	AddHost     []string `name:"add-host" sep:"none" placeholder:"NAME:IP" help:"Add a line to the container's /etc/hosts (IP host-gateway: the host)."`
	ShmSize     string   `name:"shm-size" placeholder:"SIZE" help:"Size of /dev/shm (default 64m)."`
	Ulimit      []string `sep:"none" placeholder:"NAME=SOFT[:HARD]" help:"Set a resource limit of the container's process, such as nofile=1024:2048."`
	Memory      string   `short:"m" placeholder:"SIZE" help:"Memory limit (needs a delegated cgroup v2)."`
	CPUs        float64  `name:"cpus" help:"CPU limit in CPUs (needs a delegated cgroup v2)."`
	PidsLimit   int64    `name:"pids-limit" help:"Process limit (needs a delegated cgroup v2)."`
	CapAdd      []string `name:"cap-add" placeholder:"CAP" help:"Add a capability (within the user namespace), or ALL."`
	CapDrop     []string `name:"cap-drop" placeholder:"CAP" help:"Drop a capability, or ALL."`
	Privileged  bool     `help:"Every capability of the user namespace and no seccomp filter (nothing the user could not do outside)."`
	GroupAdd    []string `name:"group-add" placeholder:"GROUP" help:"Add a supplementary group, by name in the container's /etc/group or by number."`
	Device      []string `sep:"none" placeholder:"HOST[:CONTAINER[:PERMS]]" help:"Bind a host device this user can open into the container."`
	Restart     string   `default:"no" placeholder:"no|on-failure[:N]|always|unless-stopped" help:"Restart the command when it exits, while the container's shim lives (nothing survives a reboot without a service manager)."`
	Force       string   `enum:"seccomp,none" default:"seccomp" placeholder:"seccomp|none" help:"Without subordinate ids: fake chown, setuid, setgroups and mknod and record the owners meant (seccomp), or let them fail (none). As Charliecloud's --force."`

	Image   commandFollows `arg:"" help:"Image to run."`
	Command []string       `arg:"" optional:"" passthrough:"" help:"Command and arguments (default: the image's); everything after the image is the command's."`
}

// options turns the flags into container.CreateOptions.
func (f *createFlags) options() (container.CreateOptions, error) {
	o := container.CreateOptions{
		Image: string(f.Image), Name: f.Name, Cmd: f.Command, Entrypoint: f.Entrypoint,
		WorkingDir: f.Workdir, User: f.User, Hostname: f.Hostname, Network: f.Network,
		ReadOnly: f.ReadOnly, Tty: f.Tty, OpenStdin: f.Interactive, AutoRemove: f.Rm, Init: f.Init,
		StopSignal: f.StopSignal, StopTimeout: f.StopTimeout, SecurityOpt: f.SecurityOpt,
		FakeIDs: f.Force,
	}
	fileEnv, err := readEnvFiles(f.EnvFile)
	if err != nil {
		return o, err
	}
	if err := container.CheckEnv(f.Env); err != nil {
		return o, err
	}
	o.Env = append(fileEnv, f.Env...)
	if err := f.hostOptions(&o.HostOptions); err != nil {
		return o, err
	}
	if err := f.limits(&o.HostOptions); err != nil {
		return o, err
	}
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
	if retry, perr := f.absent(g, err); retry && perr == nil {
		c, err = m.Create(o)
	} else if perr != nil {
		err = perr
	}
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
	if f.Pull == "always" {
		if err := f.pullImage(g); err != nil {
			return nil, o, err
		}
	}
	m, err := g.openContainers()
	return m, o, err
}

// absent reports whether err says the image is absent and, unless --pull
// never forbids it, pulls it so the caller tries again, as Docker does.
// Asking the store first would cost every run a second resolution.
func (f *createFlags) absent(g *Globals, err error) (retry bool, _ error) {
	if !errors.Is(err, image.ErrNotFound) || f.Pull == "always" {
		return false, err
	}
	if f.Pull == "never" {
		return false, fmt.Errorf("%w: %s, and --pull never forbids pulling it", image.ErrNotFound, f.Image)
	}
	fmt.Fprintf(g.Stderr, "Unable to find image '%s' locally\n", f.Image)
	return true, f.pullImage(g)
}

// pullImage pulls the image to run. Unpacking needs the subordinate ids,
// as `nook pull` has them; its stdout (the reference) is no output of the
// container's.
func (f *createFlags) pullImage(g *Globals) error {
	if rootless.InUserNS() || os.Geteuid() == 0 {
		opts, err := pullOptions("", true, "", 3)
		if err != nil {
			return err
		}
		_, err = g.pull(string(f.Image), opts, false, g.Stderr)
		return err
	}
	args := []string{"pull", string(f.Image)}
	if g.Root != "" {
		args = append([]string{"--root", g.Root}, args...)
	}
	return g.runInUserNS(args, g.Stderr)
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
	Detach     bool   `short:"d" help:"Run in the background and print the container id."`
	DetachKeys string `name:"detach-keys" placeholder:"KEYS" help:"Keys that detach from the container (default ctrl-p,ctrl-q)."`
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
	if !c.Detach {
		if err := container.CheckInput(c.Tty, c.Interactive, g.Stdin); err != nil {
			return fmt.Errorf("%w: run -it from a terminal, or without -t", err)
		}
	}
	keys, err := detachKeys(c.DetachKeys)
	if err != nil {
		return err
	}
	so := container.StartOptions{
		Detach: c.Detach, Stdin: g.Stdin, Stdout: g.Stdout, Stderr: g.Stderr, LogLevel: g.slogLevel(),
		DetachKeys: keys,
	}
	ctr, code, err := m.Run(o, so, c.writeCidfile)
	if ctr == nil {
		if retry, perr := c.absent(g, err); retry && perr == nil {
			ctr, code, err = m.Run(o, so, c.writeCidfile)
		} else if perr != nil {
			err = perr
		}
	}
	rootless.Trace("cli started")
	if ctr == nil {
		return err
	}
	if err == nil && c.Detach {
		fmt.Fprintln(g.Stdout, ctr.ID)
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

// hostOptions reads --add-host, --shm-size, --ulimit and the privileges.
func (f *createFlags) hostOptions(h *container.HostOptions) error {
	for _, s := range f.AddHost {
		v, err := container.ParseAddHost(s)
		if err != nil {
			return err
		}
		h.ExtraHosts = append(h.ExtraHosts, v)
	}
	if f.ShmSize != "" {
		n, err := container.ParseShmSize(f.ShmSize)
		if err != nil {
			return err
		}
		h.ShmSize = n
	}
	for _, s := range f.Ulimit {
		u, err := container.ParseUlimit(s)
		if err != nil {
			return err
		}
		h.Ulimits = append(h.Ulimits, u)
	}
	for _, s := range f.Device {
		d, err := container.ParseDevice(s)
		if err != nil {
			return err
		}
		h.Devices = append(h.Devices, d)
	}
	h.CapAdd, h.CapDrop, h.Privileged, h.GroupAdd = f.CapAdd, f.CapDrop, f.Privileged, f.GroupAdd
	if f.Restart != "no" {
		if f.Rm {
			return fmt.Errorf("conflicting options: --restart and --rm")
		}
		p, err := container.ParseRestart(f.Restart)
		if err != nil {
			return err
		}
		h.RestartPolicy = p
	}
	return nil
}

// limits reads -m, --cpus and --pids-limit, which the host must be able
// to apply.
func (f *createFlags) limits(h *container.HostOptions) error {
	var l container.Limits
	if f.Memory != "" {
		n, err := units.RAMInBytes(f.Memory)
		if err != nil || n <= 0 {
			return fmt.Errorf("--memory %q: want a positive size such as 512m", f.Memory)
		}
		l = l.WithMemory(n)
	}
	if f.CPUs < 0 || f.PidsLimit < -1 {
		return fmt.Errorf("--cpus and --pids-limit take positive numbers")
	}
	l.NanoCPUs, l.Pids = int64(f.CPUs*1e9), max(f.PidsLimit, 0)
	h.Limits = l
	return container.CheckLimits(l)
}
