package container

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"nook/container/shim"
	"nook/container/stagebin"
	"nook/fusefs"
	"nook/internal/ready"
	"nook/rootless"
)

// StartOptions say how to start a container.
type StartOptions struct {
	// Detach returns once the payload runs; the shim outlives the caller
	// and logs the output. Otherwise Start returns the payload's status.
	Detach bool
	// Stdin is used when the container was created with OpenStdin.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	LogLevel       slog.Level
}

// StartError is a container that could not start; Code is Docker's exit
// status for it (125, 126 or 127).
type StartError struct {
	Code int
	Msg  string
}

func (e *StartError) Error() string { return e.Msg }

// Start runs the container. In the foreground it returns the payload's
// exit status; a status of 125-127 may also mean it never started, the
// reason then printed on Stderr by the shim.
func (m *Manager) Start(c *Container, o StartOptions) (int, error) {
	lock, err := lockForStart(c.dir)
	if err != nil {
		return 0, fmt.Errorf("starting %s: %w", c.Name, err)
	}
	defer lock.Close()
	ls, err := m.launchShim(lock, c.Network, c.OpenStdin, o)
	if err != nil {
		return 0, fmt.Errorf("starting %s: %w", c.Name, err)
	}
	return m.finishStart(c, ls, o)
}

// lockForStart takes the container's lock, which the CLI hands the shim:
// no two shims for one container.
func lockForStart(dir string) (*os.File, error) {
	lock, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		return nil, ErrRunning
	}
	return lock, nil
}

// launchedShim is a shim process that sets up its namespaces and id maps
// while the CLI still prepares its config.
type launchedShim struct {
	l     *rootless.Launched
	ready *os.File // detached: the shim reports the start on it
}

func (s *launchedShim) abort() {
	s.l.Abort()
	if s.ready != nil {
		s.ready.Close()
	}
}

// launchShim starts the shim's process, holding lock; finishStart gives
// it its config. Everything it needs to be started with is known before
// the container exists: network, whether stdin is open, the options. It
// starts from the stages' own program (stagebin), which starts sooner than
// nook's binary, and from nook's when that cannot be executed (a store on
// a noexec mount, a damaged file) or nook was built without it.
func (m *Manager) launchShim(lock *os.File, network string, openStdin bool, o StartOptions) (*launchedShim, error) {
	maps, err := rootless.CurrentIDMaps()
	if err != nil {
		return nil, err
	}
	flags := uintptr(unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC)
	if network == "none" {
		flags |= unix.CLONE_NEWNET
	}
	program, err := stagebin.Path(filepath.Join(m.store.Root(), "bin"))
	if err != nil {
		m.log.Debug("the stages' program not written out", "err", err)
	}
	cmd := &rootless.Cmd{
		Stage: shim.StageName, Program: program, Cloneflags: flags, IDMaps: maps,
		SelfUnshare: program != "" && stagebin.SelfUnshares(),
		ExtraFiles:  []*os.File{lock},
		// Its own session: a terminal's ^C reaches the CLI only, which
		// passes it on once.
		Setsid: true,
	}
	var r, w *os.File
	if o.Detach {
		if r, w, err = os.Pipe(); err != nil {
			return nil, err
		}
		cmd.ExtraFiles = append(cmd.ExtraFiles, w)
	} else {
		if openStdin {
			cmd.Stdin = o.Stdin
		}
		cmd.Stdout, cmd.Stderr = o.Stdout, o.Stderr
		cmd.EarlyExit = true
	}
	l, err := cmd.Launch()
	if err != nil && program != "" {
		m.log.Debug("starting the shim from nook's binary", "program", program, "err", err)
		cmd.Program, cmd.SelfUnshare = "", false
		l, err = cmd.Launch()
	}
	if w != nil {
		w.Close()
	}
	if err != nil {
		if r != nil {
			r.Close()
		}
		return nil, err
	}
	return &launchedShim{l: l, ready: r}, nil
}

// finishStart sends the launched shim its config and, in the foreground,
// waits for the payload's status.
func (m *Manager) finishStart(c *Container, ls *launchedShim, o StartOptions) (int, error) {
	cfg, err := m.shimConfig(c, o)
	if err != nil {
		ls.abort()
		return 0, fmt.Errorf("starting %s: %w", c.Name, err)
	}
	if o.Detach {
		return 0, m.startDetached(c, ls, cfg)
	}
	if c.Tty && c.OpenStdin {
		restore := rawTerminal(o.Stdin)
		defer restore()
	}
	code, err := ls.l.Run(cfg)
	if err != nil {
		return 0, fmt.Errorf("starting %s: %w", c.Name, err)
	}
	return code, nil
}

// startDetached hands the shim its config and waits for its report.
func (m *Manager) startDetached(c *Container, ls *launchedShim, cfg shim.Config) error {
	r := ls.ready
	defer r.Close()
	if _, err := ls.l.Start(cfg); err != nil {
		return fmt.Errorf("starting %s: %w", c.Name, err)
	}
	err := ready.Wait(r, nil)
	var re *ready.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &re):
		return &StartError{Code: re.Code, Msg: re.Msg}
	case errors.Is(err, ready.ErrNoReport):
		return &StartError{Code: rootless.ExitSetupFailed, Msg: fmt.Sprintf("%s: the shim exited before starting it", c.Name)}
	}
	return fmt.Errorf("waiting for %s to start: %w", c.Name, err)
}

// rawTerminal puts a terminal stdin in raw mode and returns the undo.
func rawTerminal(stdin io.Reader) func() {
	f, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return func() {}
	}
	st, err := term.MakeRaw(int(f.Fd()))
	if err != nil {
		return func() {}
	}
	return func() { _ = term.Restore(int(f.Fd()), st) }
}

// shimConfig gathers what the shim needs and writes the files the
// container gets at /etc/hosts, /etc/hostname and /etc/resolv.conf.
func (m *Manager) shimConfig(c *Container, o StartOptions) (shim.Config, error) {
	// Half the id keeps the socket's path within the 107 bytes a unix
	// socket address holds.
	run, err := runtimeDir()
	if err != nil {
		return shim.Config{}, err
	}
	cfg := shim.Config{
		Dir: c.dir, Detached: o.Detach, Remove: c.AutoRemove, Hostname: c.Hostname,
		NetNone: c.Network == "none", LogLevel: o.LogLevel, ExecSocket: filepath.Join(run, c.ID[:32]+".sock"),
		OpenStdin: c.OpenStdin,
	}
	if o.Detach {
		cfg.AttachSocket = filepath.Join(run, c.ID[:32]+".attach")
	}
	diffIDs := make([]digest.Digest, 0, len(c.DiffIDs))
	for i := len(c.DiffIDs) - 1; i >= 0; i-- {
		d, err := digest.Parse(c.DiffIDs[i])
		if err != nil {
			return cfg, fmt.Errorf("layer %q: %w", c.DiffIDs[i], err)
		}
		diffIDs = append(diffIDs, d)
		dir := m.store.LayerDir(d)
		if _, err := os.Stat(dir); err != nil {
			return cfg, fmt.Errorf("layer %s of image %s is gone (was the image removed?): %w", d, c.Image, err)
		}
		cfg.Lowers = append(cfg.Lowers, dir)
	}
	cfg.Xattrs = fusefs.XattrsOff
	// Faked chowns record owners in an xattr (rootless/fakeids.go).
	if m.store.LayersHaveXattrs(diffIDs) || c.fakesIDs() {
		cfg.Xattrs = fusefs.XattrsOn
	}
	if len(cfg.Lowers) == 0 {
		// An image without layers: an empty root still needs a lower.
		empty := filepath.Join(c.dir, "empty")
		if err := os.MkdirAll(empty, 0o755); err != nil {
			return cfg, err
		}
		cfg.Lowers = []string{empty}
	}
	mounts, err := etcFiles(c)
	if err != nil {
		return cfg, err
	}
	for _, v := range c.Mounts {
		mounts = append(mounts, initMount(v))
	}
	cfg.Init = rootless.InitConfig{
		Rootfs:   filepath.Join(c.dir, "merged"),
		ReadOnly: c.ReadOnly,
		Mounts:   mounts,
		Process: rootless.InitProcess{
			Args: c.Args(), Env: c.Env, Cwd: c.WorkingDir, User: c.User, Terminal: c.Tty,
			Seccomp: c.Seccomp, FakeIDs: c.FakeIDs,
		},
	}
	return cfg, nil
}

// fakesIDs says whether the container's identity calls are faked: on a
// host that gives this user no subordinate ids, unless turned off.
func (c *Container) fakesIDs() bool {
	if c.FakeIDs == rootless.FakeIDsNone {
		return false
	}
	maps, err := rootless.CurrentIDMaps()
	return err == nil && !maps.Full
}

func initMount(v MountSpec) rootless.Mount {
	m := rootless.Mount{Type: v.Type, Source: v.Source, Target: v.Target, Options: v.Options}
	if v.Type == "tmpfs" {
		m.Source = "tmpfs"
	}
	if v.ReadOnly {
		m.Options = append(append([]string{}, m.Options...), "ro")
	}
	if v.Type == "bind" {
		// Docker creates a missing host directory.
		if _, err := os.Stat(v.Source); errors.Is(err, os.ErrNotExist) {
			_ = os.MkdirAll(v.Source, 0o755)
		}
	}
	return m
}

// etcFiles writes the container's hosts, hostname and resolv.conf and
// returns their bind mounts.
func etcFiles(c *Container) ([]rootless.Mount, error) {
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	if c.Network == "host" {
		if b, err := os.ReadFile("/etc/hosts"); err == nil {
			hosts = string(b)
		}
	}
	if c.Network != "host" || !strings.Contains(hosts, c.Hostname) {
		hosts += "127.0.1.1\t" + c.Hostname + "\n"
	}
	resolv, err := os.ReadFile("/etc/resolv.conf")
	if err != nil && c.Network == "host" {
		resolv = nil
	}
	files := []struct{ name, body string }{
		{"hosts", hosts}, {"hostname", c.Hostname + "\n"}, {"resolv.conf", string(resolv)},
	}
	var out []rootless.Mount
	for _, f := range files {
		p := filepath.Join(c.dir, f.name)
		if err := os.WriteFile(p, []byte(f.body), 0o644); err != nil {
			return nil, fmt.Errorf("writing %s: %w", p, err)
		}
		out = append(out, rootless.Mount{Type: "bind", Source: p, Target: "/etc/" + f.name})
	}
	return out, nil
}
