package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"nook/fusefs"
	"nook/rootless"
)

// stageMount is the re-exec stage serving a daemonized `nook mount`.
const stageMount = "mount"

// mountReadyEnv names the descriptor on which the daemonized server reports
// "ok" or its error to the parent waiting in `nook mount`.
const mountReadyEnv = "_NOOK_MOUNT_READY_FD"

// MountCmd is `nook mount`: the union filesystem alone, with the command
// line of fuse-overlayfs so either can be a container engine's
// mount_program.
type MountCmd struct {
	Options    []string `short:"o" sep:"none" placeholder:"OPT[,OPT...]" help:"Mount options: lowerdir=A:B (top layer first), upperdir=U, workdir=W, fsname=N, squash_to_root, xattrs=auto|on|off, allow_other, volatile (or fsync=0: copy-ups are not synced to disk); other fuse-overlayfs options are accepted and ignored."`
	Foreground bool     `short:"f" help:"Stay in the foreground; unmount on SIGTERM or SIGINT."`
	Debug      bool     `short:"d" help:"Log every FUSE request (implies -f)."`
	Mountpoint string   `arg:"" type:"existingdir" help:"Where to mount."`
}

// mountSpec is the parsed -o options.
type mountSpec struct {
	lowers      []string
	upper, work string
	opts        fusefs.Options
	ignored     []string
}

// splitOptions splits a -o value at commas not escaped with a backslash,
// as fuse-overlayfs does.
func splitOptions(s string) []string {
	var out []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case s[i] == ',':
			out = append(out, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(s[i])
		}
	}
	return append(out, cur.String())
}

func parseMountOptions(values []string) (mountSpec, error) {
	sp := mountSpec{opts: fusefs.Options{AllowOther: true}}
	for _, v := range values {
		for _, o := range splitOptions(v) {
			key, val, _ := strings.Cut(o, "=")
			switch key {
			case "":
			case "lowerdir":
				for _, l := range strings.Split(val, ":") {
					if l != "" {
						sp.lowers = append(sp.lowers, l)
					}
				}
			case "upperdir":
				sp.upper = val
			case "workdir":
				sp.work = val
			case "fsname":
				sp.opts.FsName = val
			case "squash_to_root":
				sp.opts.SquashToRoot = true
			case "allow_other":
				sp.opts.AllowOther = true
			case "xattrs":
				m, ok := map[string]fusefs.XattrMode{"auto": fusefs.XattrsAuto, "on": fusefs.XattrsOn, "off": fusefs.XattrsOff}[val]
				if !ok {
					return sp, fmt.Errorf("mount option xattrs=%q: want auto, on or off", val)
				}
				sp.opts.Xattrs = m
			case "noxattrs":
				if val != "0" {
					sp.opts.Xattrs = fusefs.XattrsOff
				}
			case "volatile":
				sp.opts.Volatile = true
			case "fsync":
				// fuse-overlayfs's fsync=0 skips syncs it would otherwise
				// make; nook's only sync of its own is a copy-up's.
				sp.opts.Volatile = val == "0"
			case "uidmapping", "gidmapping", "squash_to_uid", "squash_to_gid":
				return sp, fmt.Errorf("mount option %s is not supported: run nook mount inside the user namespace instead", key)
			default:
				// fuse-overlayfs tuning and kernel options nook does not need:
				// noacl, threaded, fast_ino, writeback,
				// default_permissions, suid, dev, rw, context=...
				sp.ignored = append(sp.ignored, o)
			}
		}
	}
	if len(sp.lowers) == 0 {
		return sp, errors.New("mount options need lowerdir=DIR[:DIR...]")
	}
	if (sp.upper == "") != (sp.work == "") {
		return sp, errors.New("mount options upperdir and workdir go together")
	}
	return sp, nil
}

// Run mounts the union. Without -f it daemonizes as fuse-overlayfs does:
// the server runs in a re-executed child in its own session and this
// process exits 0 only once the mount is ready.
func (c *MountCmd) Run(g *Globals) error {
	sp, err := parseMountOptions(c.Options)
	if err != nil {
		return err
	}
	if len(sp.ignored) > 0 {
		g.Log.Debug("ignoring mount options", "options", sp.ignored)
	}
	sp.opts.Logger = g.Log
	sp.opts.Debug = c.Debug
	if fd := os.Getenv(mountReadyEnv); fd != "" {
		return serveDaemon(sp, c.Mountpoint, fd)
	}
	if c.Foreground || c.Debug {
		return serveForeground(sp, c.Mountpoint, g)
	}
	return daemonize(g.Stderr)
}

// serveForeground mounts and serves until unmounted or signalled.
func serveForeground(sp mountSpec, mnt string, g *Globals) error {
	srv, err := fusefs.Mount(sp.lowers, sp.upper, sp.work, mnt, sp.opts)
	if err != nil {
		return err
	}
	serveUntilDone(srv, mnt, g)
	return nil
}

func serveUntilDone(srv *fusefs.Server, mnt string, g *Globals) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	go func() {
		s := <-sig
		g.Log.Info("unmounting on signal", "mountpoint", mnt, "signal", s)
		if err := srv.Unmount(); err != nil {
			g.Log.Warn("unmount failed; lazy unmount", "err", err)
			_ = syscall.Unmount(mnt, syscall.MNT_DETACH)
		}
	}()
	srv.Wait()
	signal.Stop(sig)
}

// serveDaemon is the daemonized child: it reports readiness or the mount
// error on the inherited descriptor, then serves.
func serveDaemon(sp mountSpec, mnt, fdStr string) error {
	n, err := strconv.Atoi(fdStr)
	if err != nil {
		return fmt.Errorf("%s=%q: %w", mountReadyEnv, fdStr, err)
	}
	ready := &readyWriter{f: os.NewFile(uintptr(n), "ready")}
	os.Unsetenv(mountReadyEnv)
	// Until the mount is ready, log lines go to the waiting parent, which
	// prints them; afterwards the daemon has no stderr.
	log := slog.New(slog.NewTextHandler(ready, &slog.HandlerOptions{Level: slog.LevelInfo}))
	sp.opts.Logger = log
	srv, err := fusefs.Mount(sp.lowers, sp.upper, sp.work, mnt, sp.opts)
	if err != nil {
		ready.finish("error " + err.Error())
		return err
	}
	ready.finish("ok")
	serveUntilDone(srv, mnt, &Globals{Log: log})
	return nil
}

// readyWriter is the daemon's end of the readiness pipe: log lines, then
// one final line "ok" or "error MESSAGE"; writes after that are dropped.
type readyWriter struct {
	mu sync.Mutex
	f  *os.File
}

func (w *readyWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f != nil {
		_, _ = w.f.Write(b)
	}
	return len(b), nil
}

func (w *readyWriter) finish(status string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, _ = io.WriteString(w.f, status)
	w.f.Close()
	w.f = nil
}

// daemonize re-executes nook as the mount stage in a new session and waits
// for its report.
func daemonize(stderr io.Writer) error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("creating the readiness pipe: %w", err)
	}
	defer r.Close()
	cmd := exec.Command("/proc/self/exe", os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(os.Environ(), rootless.StageEnv+"="+stageMount, mountReadyEnv+"=3")
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// No stdio: a caller reading our output until EOF must not wait for
	// the server's lifetime.
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("starting the mount server: %w", err)
	}
	w.Close()
	msg, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("waiting for the mount server: %w", err)
	}
	logs, status := "", string(msg)
	if i := strings.LastIndexByte(status, '\n'); i >= 0 {
		logs, status = status[:i+1], status[i+1:]
	}
	_, _ = io.WriteString(stderr, logs)
	if status == "ok" {
		_ = cmd.Process.Release()
		return nil
	}
	state, _ := cmd.Process.Wait()
	if e, ok := strings.CutPrefix(status, "error "); ok {
		return errors.New(e)
	}
	return fmt.Errorf("mount server exited before mounting (%v)", state)
}

// mountStage runs the daemonized server (see daemonize).
func mountStage() int { return Main(os.Args[1:]) }
