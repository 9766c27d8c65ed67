package container

// The preflight's namespace probes: the parent side runs a stage of this
// binary through rootless.Cmd, exactly as a container start would; the
// stages try the one thing and report on stdout/stderr and in their status.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"nook/internal/overlay"
	"nook/rootless"
)

// probeResult is what a probe stage did: err is nil when it ran and
// exited 0; out is its stdout.
type probeResult struct {
	err error
	out string
}

// runProbe runs stage in a new user and mount namespace with maps, killing
// it when ctx ends.
func runProbe(ctx context.Context, stage string, args []string, maps rootless.IDMaps) probeResult {
	var stdout, stderr bytes.Buffer
	cmd := &rootless.Cmd{
		Stage:      stage,
		Args:       args,
		Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_NEWNS,
		IDMaps:     maps,
		Stdout:     &stdout,
		Stderr:     &stderr,
		Pdeathsig:  unix.SIGKILL,
	}
	p, err := cmd.Start()
	if err != nil {
		return probeResult{err: err}
	}
	type exit struct {
		code int
		err  error
	}
	done := make(chan exit, 1)
	go func() {
		code, err := p.Wait()
		done <- exit{code, err}
	}()
	var e exit
	select {
	case e = <-done:
	case <-ctx.Done():
		_ = p.Signal(unix.SIGKILL)
		<-done
		return probeResult{err: fmt.Errorf("stage %s: %w", stage, ctx.Err())}
	}
	switch {
	case e.err != nil:
		return probeResult{err: e.err}
	case e.code != 0:
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = fmt.Sprintf("exit status %d", e.code)
		}
		return probeResult{err: errors.New(msg), out: stdout.String()}
	}
	return probeResult{out: stdout.String()}
}

// ProbeUserNS is the stage of the namespace probe, run in a new user and
// mount namespace. It checks that it is uid 0 and reports, one fact a line,
// how many uids its namespace maps ("ids N") and whether kernel overlayfs
// works there ("overlay ok" or "overlay " and the error). os.Args[1] is a
// directory to mount a tmpfs on for the overlay attempt, in this stage's own
// mount namespace, so nothing it makes reaches the host's disk. One stage
// does both to start one namespace, not two: each start costs two execs of
// nook and two of newuidmap/newgidmap.
func ProbeUserNS() int {
	if os.Geteuid() != 0 {
		fmt.Fprintf(os.Stderr, "uid %d, not 0, in the new user namespace\n", os.Geteuid())
		return 1
	}
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("ids %d\n", mappedIDs(b))
	switch {
	case len(os.Args) < 2:
		fmt.Println("overlay no directory to probe in")
	default:
		if err := tryOverlay(os.Args[1]); err != nil {
			fmt.Printf("overlay %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		} else {
			fmt.Println("overlay ok")
		}
	}
	return 0
}

// probeFacts reads ProbeUserNS's report: the uids mapped ("" if absent) and
// the overlay attempt's error (nil when it worked).
func probeFacts(out string) (ids string, overlayErr error) {
	overlayErr = errors.New("the probe did not report on overlayfs")
	for line := range strings.Lines(out) {
		key, val, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch {
		case key == "ids":
			ids = val
		case key == "overlay" && val == "ok":
			overlayErr = nil
		case key == "overlay":
			overlayErr = errors.New(val)
		}
	}
	return ids, overlayErr
}

// tryOverlay stacks two lower layers in nook's on-disk format — a whiteout
// (c 0 0) and an opaque directory (user.overlay.opaque=y) in the upper one
// — and checks that the merged view hides what they mark, and that a
// deletion in the merged view leaves a whiteout in the upper directory.
func tryOverlay(dir string) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "mode=0700"); err != nil {
		return fmt.Errorf("mounting tmpfs on %s: %w", dir, err)
	}
	// Relative paths keep the option string free of ',' and ':'.
	if err := os.Chdir(dir); err != nil {
		return err
	}
	for _, d := range []string{"low1/dir", "low2/dir", "up", "work", "merged"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	for _, f := range []string{"low1/gone", "low1/dir/old", "low1/del"} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			return err
		}
	}
	if err := unix.Mknod("low2/gone", unix.S_IFCHR|0o644, 0); err != nil {
		return fmt.Errorf("making a whiteout: %w", err)
	}
	if err := unix.Setxattr("low2/dir", overlay.OpaqueXattr, []byte(overlay.OpaqueValue), 0); err != nil {
		return fmt.Errorf("setting %s on tmpfs (Linux 6.6+ has user xattrs there): %w", overlay.OpaqueXattr, err)
	}
	opts := "lowerdir=low2:low1,upperdir=up,workdir=work,userxattr"
	if err := unix.Mount("overlay", "merged", "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount -t overlay -o %s: %w", opts, err)
	}
	if _, err := os.Lstat("merged/gone"); !errors.Is(err, os.ErrNotExist) {
		return errors.New("a whiteout in a lower layer did not hide the file below it")
	}
	if _, err := os.Lstat("merged/dir/old"); !errors.Is(err, os.ErrNotExist) {
		return errors.New("an opaque directory did not hide the directory below it")
	}
	if err := os.Remove("merged/del"); err != nil {
		return fmt.Errorf("deleting a lower file: %w", err)
	}
	if fi, err := os.Lstat("up/del"); err != nil || !overlay.IsWhiteout(fi) {
		return errors.New("deleting a lower file left no whiteout in the upper directory")
	}
	return nil
}

// mappedIDs sums the counts of a uid_map or gid_map; lines it cannot read
// count nothing.
func mappedIDs(b []byte) int64 {
	var n int64
	for line := range bytes.Lines(b) {
		f := strings.Fields(string(line))
		if len(f) != 3 {
			continue
		}
		if size, err := strconv.ParseInt(f[2], 10, 64); err == nil && size > 0 {
			n += size
		}
	}
	return n
}
