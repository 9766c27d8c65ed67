package container

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path"
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
	// Detach returns once the payload runs. Otherwise the caller is
	// attached (see Attach) from before the payload starts, and Start
	// returns its status, or ErrDetached. Either way the shim outlives
	// the caller and logs the output.
	Detach bool
	// Stdin is used when the container was created with OpenStdin.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	LogLevel       slog.Level
	DetachKeys     []byte // in the foreground; nil: ctrl-p ctrl-q
}

// StartError is a container that could not start; Code is Docker's exit
// status for it (125, 126 or 127).
type StartError struct {
	Code int
	Msg  string
}

func (e *StartError) Error() string { return e.Msg }

// Start runs the container. In the foreground it returns the payload's
// exit status; one that never started is a *StartError.
func (m *Manager) Start(c *Container, o StartOptions) (int, error) {
	lock, err := lockForStart(c.fs, c.name())
	if err != nil {
		return 0, fmt.Errorf("starting %s: %w", c.Name, err)
	}
	defer lock.Close()
	ls, err := m.launchShim(lock, c.Network, o)
	if err != nil {
		return 0, fmt.Errorf("starting %s: %w", c.Name, err)
	}
	return m.finishStart(c, ls, o)
}

// lockForStart takes the container's lock, which the CLI hands the shim:
// no two shims for one container.
func lockForStart(r *os.Root, dir string) (*os.File, error) {
	lock, err := r.OpenFile(path.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
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
	ready *os.File      // the shim reports the start on it
	conn  *net.UnixConn // foreground: attached from the start (shim.AttachFD)
	maps  rootless.IDMaps
}

func (s *launchedShim) abort() {
	s.l.Abort()
	s.close()
}

func (s *launchedShim) close() {
	s.ready.Close()
	if s.conn != nil {
		s.conn.Close()
	}
}

// shimNamespaces is the namespaces the shim unshares for a container on
// network: those it shares with no one but its init (which unshares a
// mount and a pid namespace of its own). The others are the host's.
func shimNamespaces(network string) int {
	flags := unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC
	if network == "none" {
		flags |= unix.CLONE_NEWNET
	}
	return flags
}

// launchShim starts the shim's process, holding lock; finishStart gives
// it its config. Everything it needs to be started with is known before
// the container exists: network, whether stdin is open, the options. It
// starts from the stages' own program (stagebin), which starts sooner than
// nook's binary, and from nook's when that cannot be executed (a store on
// a noexec mount, a damaged file) or nook was built without it.
func (m *Manager) launchShim(lock *os.File, network string, o StartOptions) (*launchedShim, error) {
	maps, err := rootless.CurrentIDMaps()
	if err != nil {
		return nil, err
	}
	flags := uintptr(shimNamespaces(network))
	program, err := "", error(nil)
	if stagebin.Embedded() {
		var bin *os.Root
		if bin, err = m.store.OpenDir("bin", true); err == nil {
			defer bin.Close()
			program, err = stagebin.PathIn(bin)
		}
	}
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
	ls := &launchedShim{maps: maps}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	ls.ready = r
	defer w.Close()
	cmd.ExtraFiles = append(cmd.ExtraFiles, w)
	if !o.Detach {
		conn, theirs, err := attachPair()
		if err != nil {
			r.Close()
			return nil, err
		}
		defer theirs.Close()
		ls.conn = conn
		cmd.ExtraFiles = append(cmd.ExtraFiles, theirs)
	}
	l, err := cmd.Launch()
	if err != nil && program != "" {
		m.log.Debug("starting the shim from nook's binary", "program", program, "err", err)
		cmd.Program, cmd.SelfUnshare = "", false
		l, err = cmd.Launch()
	}
	if err != nil {
		ls.close()
		return nil, err
	}
	ls.l = l
	return ls, nil
}

// attachPair is a connected pair of unix sockets: the CLI's end, and the
// shim's, which it inherits.
func attachPair() (*net.UnixConn, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("attach socket pair: %w", err)
	}
	theirs := os.NewFile(uintptr(fds[1]), "attach-shim")
	f := os.NewFile(uintptr(fds[0]), "attach")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		theirs.Close()
		return nil, nil, fmt.Errorf("attach socket pair: %w", err)
	}
	return c.(*net.UnixConn), theirs, nil
}

// finishStart sends the launched shim its config and, in the foreground,
// stays attached until the payload's status or a detach.
func (m *Manager) finishStart(c *Container, ls *launchedShim, o StartOptions) (int, error) {
	cfg, err := m.shimConfig(c, o)
	if err != nil {
		ls.abort()
		return 0, fmt.Errorf("starting %s: %w", c.Name, err)
	}
	defer ls.close()
	p, err := ls.l.Start(cfg)
	if err != nil {
		return 0, fmt.Errorf("starting %s: %w", c.Name, err)
	}
	err = startReport(c, ls.maps, ready.Wait(ls.ready, nil))
	if err != nil || o.Detach {
		var se *StartError
		if ls.conn != nil && errors.As(err, &se) {
			_, _ = p.Wait() // the shim that reported a failure is on its way out
		} else {
			p.Release() // the shim outlives this process
		}
		return 0, err
	}
	ao := AttachOptions{Stdout: o.Stdout, Stderr: o.Stderr, NoStdin: !c.OpenStdin,
		SigProxy: true, StdinOnce: true, DetachKeys: o.DetachKeys}
	if c.OpenStdin {
		ao.Stdin = o.Stdin
	}
	code, err := m.attach(c, ls.conn, ao)
	if err != nil {
		p.Release() // detached: the shim outlives this process
		return code, err
	}
	// The container is done; once its shim is gone too, nothing of it is
	// left when `run` returns.
	_, _ = p.Wait()
	return code, nil
}

// startReport turns the shim's report on the start into an error.
func startReport(c *Container, maps rootless.IDMaps, err error) error {
	var re *ready.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &re):
		return &StartError{Code: re.Code, Msg: re.Msg + subIDHint(maps, c.User)}
	case errors.Is(err, ready.ErrNoReport):
		return &StartError{Code: rootless.ExitSetupFailed, Msg: fmt.Sprintf("%s: the shim exited before starting it", c.Name)}
	}
	return fmt.Errorf("waiting for %s to start: %w", c.Name, err)
}

// terminalSize is the size of the first of streams that is a terminal.
func terminalSize(streams ...any) *unix.Winsize {
	for _, s := range streams {
		if f, ok := s.(*os.File); ok {
			if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil {
				return ws
			}
		}
	}
	return nil
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
		Dir: c.dir, Attached: !o.Detach, Remove: c.AutoRemove, Hostname: c.Hostname,
		NetNone: c.Network == "none", LogLevel: o.LogLevel,
		AttachSocket: filepath.Join(run, c.ID[:32]+".attach"), OpenStdin: c.OpenStdin,
		NoNewPrivileges: c.NoNewPrivileges, Reap: c.Init, Restart: c.RestartPolicy.shimRestart(),
		Limits: c.Limits, Cgroup: "nook-" + c.ID,
	}
	if c.AutoRemove {
		for _, v := range c.Mounts {
			if v.Type == "volume" && v.Anonymous {
				cfg.RemoveVolumes = append(cfg.RemoveVolumes, filepath.Dir(m.VolumeMountpoint(v.Source)))
			}
		}
		cfg.Lock = filepath.Join(m.root, allLockFile)
	}
	if c.Tty && !o.Detach {
		cfg.ConsoleSize = terminalSize(o.Stdin, o.Stdout)
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
		if err := c.fs.MkdirAll(c.file("empty"), 0o755); err != nil {
			return cfg, err
		}
		cfg.Lowers = []string{filepath.Join(c.dir, "empty")}
	}
	mounts, err := etcFiles(c)
	if err != nil {
		return cfg, err
	}
	if c.ShmSize > 0 {
		mounts = append(mounts, shmMount(c.ShmSize))
	}
	for _, v := range c.Mounts {
		if v.Type == "volume" {
			v = m.volumeBind(v)
		}
		mounts = append(mounts, initMount(v))
	}
	for _, d := range c.Devices {
		mounts = append(mounts, deviceMount(d))
	}
	for _, u := range c.Ulimits {
		res, l := u.rlimit()
		cfg.Rlimits = append(cfg.Rlimits, shim.Rlimit{Name: u.Name, Resource: res, Cur: l.Cur, Max: l.Max})
	}
	cfg.Init = rootless.InitConfig{
		Rootfs:   filepath.Join(c.dir, "merged"),
		ReadOnly: c.ReadOnly,
		Unmasked: c.Privileged, // as Docker's --privileged
		Mounts:   mounts,
		Process: rootless.InitProcess{
			Args: c.Args(), Env: c.Env, Cwd: c.WorkingDir, User: c.User, Terminal: c.Tty,
			Seccomp: c.seccompSpec(), FakeIDs: c.FakeIDs, Caps: c.caps(false), Groups: c.GroupAdd,
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
	m := rootless.Mount{Type: v.Type, Source: v.Source, Target: v.Target, Options: v.Options, Populate: v.populate}
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
	hosts += hostsLines(c.ExtraHosts)
	resolv, err := os.ReadFile("/etc/resolv.conf")
	if err != nil && c.Network == "host" {
		resolv = nil
	}
	files := []struct{ name, body string }{
		{"hosts", hosts}, {"hostname", c.Hostname + "\n"}, {"resolv.conf", string(resolv)},
	}
	var out []rootless.Mount
	for _, f := range files {
		// Written through the store's descriptor; the stages bind it by
		// path, from another process.
		p := filepath.Join(c.dir, f.name)
		if err := c.fs.WriteFile(c.file(f.name), []byte(f.body), 0o644); err != nil {
			return nil, fmt.Errorf("writing %s: %w", p, err)
		}
		out = append(out, rootless.Mount{Type: "bind", Source: p, Target: "/etc/" + f.name})
	}
	return out, nil
}

// subIDHint is what a failed start of a container whose user is not root
// adds when the user has no subordinate ids: only root (the user's own
// id) exists in the container then, which is likely why. It carries the
// remedy `nook info` gives.
func subIDHint(maps rootless.IDMaps, user string) string {
	name, _, _ := strings.Cut(user, ":")
	if maps.Full || name == "" || name == "0" || name == "root" {
		return ""
	}
	return fmt.Sprintf(" (%s: only root exists in containers, so user %s cannot); remedy: %s",
		maps.Why, user, rootless.SubIDRemedy())
}
