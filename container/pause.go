package container

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Pausing without a cgroup: a user without a delegated cgroup cannot
// freeze one, so pause sends SIGSTOP to every process of the container's
// pid namespace and unpause SIGCONT. The container's processes can see
// the difference (a SIGCONT handler runs; a parent is told of its child's
// stop), which a cgroup freezer would hide. The paused file in the
// container's directory names the run it paused (pid 1 and its start), so
// a marker left by a run that ended never marks the next one.

// Sentinel errors of pause.
var (
	ErrPaused    = errors.New("container is paused")
	ErrNotPaused = errors.New("container is not paused")
)

// StatusPaused is Docker's status of a paused container.
const StatusPaused = "paused"

const pausedFile = "paused"

// runMark names the run of c now: its pid 1 and when it started.
func (c *Container) runMark() string {
	return fmt.Sprintf("%d %s", c.State.Pid, c.State.StartedAt.Format(time.RFC3339Nano))
}

// readPaused sets c.paused from the marker, for a running container.
func (c *Container) readPaused() {
	if !c.Running() {
		return
	}
	b, err := c.fs.ReadFile(c.file(pausedFile))
	c.paused = err == nil && strings.TrimSpace(string(b)) == c.runMark()
}

// Paused reports whether c is running and paused.
func (c *Container) Paused() bool { return c.paused }

// StatusRestarting is Docker's status of a container between its
// payload's exit and the restart its policy asks for.
const StatusRestarting = "restarting"

// Status is Docker's status word: created, running, paused, restarting
// or exited.
func (c *Container) Status() string {
	if c.paused {
		return StatusPaused
	}
	if c.Restarting() {
		return StatusRestarting
	}
	return c.State.Status
}

// Pause stops every process of the running container c with SIGSTOP and
// waits until each is stopped, again until a pass finds none it has not
// stopped: a process may fork while the others are being stopped.
func (m *Manager) Pause(c *Container) error {
	if !c.Running() {
		return fmt.Errorf("%s: %w", c.Name, ErrNotRunning)
	}
	if c.paused {
		return fmt.Errorf("%s: %w", c.Name, ErrPaused)
	}
	if err := c.fs.WriteFile(c.file(pausedFile), []byte(c.runMark()+"\n"), 0o600); err != nil {
		return fmt.Errorf("pausing %s: %w", c.Name, err)
	}
	deadline := time.Now().Add(pauseWait)
	for {
		pids, err := c.pids()
		if err != nil {
			return err
		}
		settled := true
		for _, pid := range pids {
			if stopped(pid) {
				continue
			}
			settled = false
			if err := unix.Kill(pid, unix.SIGSTOP); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("pausing %s: process %d: %w", c.Name, pid, err)
			}
		}
		if settled {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pausing %s: its processes did not all stop within %s", c.Name, pauseWait)
		}
		time.Sleep(time.Millisecond)
	}
	c.paused = true
	return nil
}

// pauseWait bounds how long pause waits for the processes to stop.
const pauseWait = 10 * time.Second

// stopped reports whether process pid is stopped (state T) or gone.
func stopped(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'T' || s[i+2] == 'Z' || s[i+2] == 'X'
}

// Unpause resumes the paused container c with SIGCONT to each process.
func (m *Manager) Unpause(c *Container) error {
	if !c.Running() {
		return fmt.Errorf("%s: %w", c.Name, ErrNotRunning)
	}
	if !c.paused {
		return fmt.Errorf("%s: %w", c.Name, ErrNotPaused)
	}
	if err := m.resume(c); err != nil {
		return err
	}
	if err := c.fs.Remove(c.file(pausedFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("unpausing %s: %w", c.Name, err)
	}
	c.paused = false
	return nil
}

func (m *Manager) resume(c *Container) error {
	pids, err := c.pids()
	if err != nil {
		return err
	}
	for _, pid := range pids {
		if err := unix.Kill(pid, unix.SIGCONT); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("unpausing %s: process %d: %w", c.Name, pid, err)
		}
	}
	return nil
}

// pids lists the processes of c's pid namespace, pid 1 included, found
// through /proc: those whose /proc/PID/ns/pid is pid 1's.
func (c *Container) pids() ([]int, error) {
	if !c.Running() || c.State.Pid <= 0 {
		return nil, fmt.Errorf("%s: %w", c.Name, ErrNotRunning)
	}
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", c.State.Pid))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.Name, ErrNotRunning)
	}
	var out []int
	for _, pid := range allPids() {
		// Another user's process, or gone meanwhile, fails to read.
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); err == nil && l == ns {
			out = append(out, pid)
		}
	}
	return out, nil
}
