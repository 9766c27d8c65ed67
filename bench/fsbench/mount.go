package fsbench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"nook/bench/host"
)

// config is one column: native, or a FUSE union server.
type config struct {
	name string
	// server is the union's command line before "-f -o OPTS MNT"; nil for native.
	server []string
	// ns, when set, is the user+mount namespace the server mounts in and
	// every workload runs in (a server that cannot use fusermount3).
	ns *userns
}

func (c *config) native() bool { return c.server == nil }

func (c *config) prefix() []string {
	if c.ns == nil {
		return nil
	}
	return c.ns.prefix()
}

// userns is a namespace held open by a sleeping process that unshare(1)
// made (unshare -Urm: the user maps to root inside, a private mount
// namespace). Commands enter it with nsenter, which an unprivileged user may
// do for a namespace it owns.
type userns struct {
	holder *exec.Cmd
}

func (n *userns) prefix() []string {
	return []string{"nsenter", "-t", strconv.Itoa(n.holder.Process.Pid), "-U", "-m", "--preserve-credentials"}
}

func (s *suite) newUserns(ctx context.Context) (*userns, error) {
	// Not tied to ctx: it lives until close, after every mount in it is gone.
	cmd := s.opts.User.Command(context.WithoutCancel(ctx), nil, "unshare", "-Urm", "sleep", "infinity")
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting a user namespace: %w", err)
	}
	n := &userns{holder: cmd}
	// unshare execs sleep once the namespace and its id map exist.
	comm := fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if b, err := os.ReadFile(comm); err == nil && strings.TrimSpace(string(b)) == "sleep" {
			return n, nil
		}
		if time.Now().After(deadline) {
			n.close()
			return nil, errors.New("unshare -Urm did not start in 5s")
		}
	}
}

func (n *userns) close() {
	_ = syscall.Kill(n.holder.Process.Pid, syscall.SIGKILL)
	_ = n.holder.Wait()
}

// mount is a live union mount with its server.
type mount struct {
	cfg    *config
	dir    string // the mount point
	upper  string
	server *exec.Cmd
	exited chan struct{} // closed when the server exits
	dev    uint64        // the mount's device number, naming its fusectl connection
	log    *os.File
}

// mount starts cfg's server over the fixture's layers with a fresh upper
// and work dir under base, and waits until the mount answers.
func (s *suite) mount(ctx context.Context, cfg *config, base string) (*mount, error) {
	m := &mount{cfg: cfg, dir: filepath.Join(base, "mnt"), upper: filepath.Join(base, "upper"), exited: make(chan struct{})}
	work := filepath.Join(base, "work")
	if _, err := s.work(ctx, nil, "mkdir", m.dir, m.upper, work); err != nil {
		return nil, err
	}
	// volatile: no sync of copied-up data (see Method).
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s,volatile", strings.Join(s.fx.Lowers, ":"), m.upper, work)
	args := append(append([]string{}, cfg.server[1:]...), "-f", "-o", opts, m.dir)
	log, err := os.Create(filepath.Join(base, "server.log"))
	if err != nil {
		return nil, fmt.Errorf("creating server log: %w", err)
	}
	m.log = log
	// The server outlives ctx's workloads; teardown ends it.
	m.server = s.opts.User.Command(context.WithoutCancel(ctx), cfg.prefix(), cfg.server[0], args...)
	m.server.Stdout, m.server.Stderr = log, log
	if err := m.server.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("starting %s: %w", cfg.name, err)
	}
	go func() { _ = m.server.Wait(); close(m.exited) }()
	s.live[m] = true

	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type res struct {
		r   Result
		err error
	}
	ready := make(chan res, 1)
	go func() {
		r, err := s.work(wctx, cfg, "waitmount", m.dir, "20s")
		ready <- res{r, err}
	}()
	select {
	case r := <-ready:
		if r.err == nil {
			m.dev = r.r.Dev
			return m, nil
		}
		err = r.err
	case <-m.exited:
		err = fmt.Errorf("server exited: %s", m.server.ProcessState)
	}
	s.unmount(m)
	return nil, fmt.Errorf("mounting %s on %s: %w; server log: %s", cfg.name, m.dir, err, tail(m.log.Name()))
}

// unmount tears a mount down and never leaves it behind: a polite unmount
// first; if that fails, the connection is aborted (root) and the server
// killed, which fails every pending request, then a lazy unmount.
func (s *suite) unmount(m *mount) {
	if !s.live[m] {
		return
	}
	delete(s.live, m)
	defer m.log.Close()
	polite, lazy := []string{"fusermount3", "-u", m.dir}, []string{"fusermount3", "-u", "-z", m.dir}
	if m.cfg.ns != nil {
		polite, lazy = []string{"umount", m.dir}, []string{"umount", "-l", m.dir}
	}
	if err := s.tool(m.cfg, 15*time.Second, polite...); err != nil {
		s.log.Warn("unmount failed, aborting the mount", "config", m.cfg.name, "mount", m.dir, "err", err)
		if m.dev != 0 {
			if err := host.AbortFUSE(m.dev); err != nil && !errors.Is(err, host.ErrNotRoot) {
				s.log.Warn("aborting FUSE connection", "err", err)
			}
		}
		_ = syscall.Kill(-m.server.Process.Pid, syscall.SIGKILL)
		if err := s.tool(m.cfg, 15*time.Second, lazy...); err != nil && m.dev != 0 {
			s.log.Error("mount may be left behind", "mount", m.dir, "err", err)
		}
	}
	select {
	case <-m.exited:
		return
	case <-time.After(10 * time.Second):
	}
	s.log.Warn("server still running after unmount, killing it", "config", m.cfg.name)
	_ = syscall.Kill(-m.server.Process.Pid, syscall.SIGKILL)
	<-m.exited
}

// tool runs a short command as the bench user in cfg's namespace.
func (s *suite) tool(cfg *config, timeout time.Duration, argv ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := s.opts.User.Command(ctx, cfg.prefix(), argv[0], argv[1:]...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// tail is the end of a log file, for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	if s := strings.TrimSpace(string(b)); s != "" {
		return s
	}
	return "(empty)"
}
