package container

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"nook/container/shim"
)

// Kill sends sig to the container's pid 1: its command, or with --init
// nook's init, which passes it on; SIGKILL ends the container at once.
func (m *Manager) Kill(c *Container, sig syscall.Signal) error {
	if !c.Running() {
		return fmt.Errorf("%s: %w", c.Name, ErrNotRunning)
	}
	if err := c.endsPolicy(sig); err != nil {
		return err
	}
	if c.State.Pid <= 0 {
		// Restarting: no process to signal; the shim sees the stop mark
		// endsPolicy left, if sig ends the container, and ends it.
		if _, err := c.fs.Stat(c.file(shim.StopFile)); err == nil {
			return nil
		}
		return fmt.Errorf("%s: %w", c.Name, ErrNotRunning)
	}
	// pid 1 dies with its shim (parent-death signal), so while the shim
	// holds the lock the recorded pid is still the container's.
	err := unix.Kill(c.State.Pid, sig)
	if errors.Is(err, unix.EPERM) && sig == syscall.SIGKILL && c.State.ShimPid > 0 {
		// From a user namespace of our own (rm runs in one), a pid 1
		// of another uid is out of reach; its shim is not, and takes
		// the container along (its parent-death signal).
		err = unix.Kill(c.State.ShimPid, sig)
	}
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("%s: %w", c.Name, ErrNotRunning)
		}
		return fmt.Errorf("signalling %s: %w", c.Name, err)
	}
	return nil
}

// Stop sends the stop signal, waits up to timeout (nil: the container's
// own, else 10 s; negative: forever) and then kills the container.
func (m *Manager) Stop(c *Container, timeout *time.Duration) error {
	if !c.Running() {
		return nil
	}
	t := 10 * time.Second
	if c.StopTimeout != nil {
		t = time.Duration(*c.StopTimeout) * time.Second
	}
	if timeout != nil {
		t = *timeout
	}
	sig := syscall.SIGTERM
	if c.StopSignal != "" {
		if s, err := ParseSignal(c.StopSignal); err == nil {
			sig = s
		}
	}
	// Between restarts the recorded pid is gone: the shim, which sees
	// the mark, still ends the container.
	if err := m.Kill(c, sig); err != nil && !errors.Is(err, ErrNotRunning) {
		return err
	}
	if c.paused {
		// The stop signal waits for the processes to run again.
		_ = m.Unpause(c)
	}
	if c.waitStopped(t) {
		return nil
	}
	if err := m.Kill(c, syscall.SIGKILL); err != nil && !errors.Is(err, ErrNotRunning) {
		return err
	}
	c.waitStopped(-1)
	return nil
}

// waitStopped waits until the shim is gone, at most d (negative: no
// limit), and reports whether it is.
func (c *Container) waitStopped(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for c.shimAlive() {
		if d >= 0 && time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return true
}

// Wait blocks until the container stops and returns its exit code. A
// container removed on exit (--rm) reports 0 once gone.
func (m *Manager) Wait(c *Container) (int, error) {
	if f, err := c.fs.Open(c.file(lockFile)); err == nil {
		// The shim holds the lock exclusively for its whole life.
		for {
			err = unix.Flock(int(f.Fd()), unix.LOCK_SH)
			if !errors.Is(err, unix.EINTR) {
				break
			}
		}
		f.Close()
	}
	fresh, err := m.load(c.ID)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return fresh.State.ExitCode, nil
}

// Remove deletes a stopped container and its writable layer; with force a
// running one is killed first. Files of the writable layer belong to the
// container's ids: call it inside the user namespace.
func (m *Manager) Remove(c *Container, force bool) error {
	return m.RemoveWith(c, RemoveOptions{Force: force})
}

// RemoveOptions are rm's.
type RemoveOptions struct {
	Force bool // kill a running container first
	// Volumes removes the container's anonymous volumes too (rm -v), as
	// the removal of a --rm container always does.
	Volumes bool
}

// RemoveWith removes c as o says.
func (m *Manager) RemoveWith(c *Container, o RemoveOptions) error {
	force := o.Force
	if c.Running() {
		if !force {
			return fmt.Errorf("cannot remove %s: %w: stop it first or use -f", c.Name, ErrRunning)
		}
		if err := m.Kill(c, syscall.SIGKILL); err != nil && !errors.Is(err, ErrNotRunning) {
			return err
		}
		c.waitStopped(-1)
	}
	unlock, err := m.lockAll()
	if err != nil {
		return err
	}
	defer unlock()
	// The config goes first: from then on it is no container.
	if err := c.fs.Remove(c.file(configFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", c.Name, err)
	}
	if err := c.fs.RemoveAll(c.name()); err != nil {
		return fmt.Errorf("removing %s: %w", c.Name, err)
	}
	// Left behind by a shim that was killed.
	for _, sock := range []string{c.State.AttachSocket} {
		if sock != "" {
			_ = os.Remove(sock)
		}
	}
	if o.Volumes || c.AutoRemove {
		m.removeAnonymous(c)
	}
	return nil
}
