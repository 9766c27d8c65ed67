package container

import (
	"encoding/json"
	"errors"
	"syscall"
	"time"
)

// shimDiedCode is the exit code of a container found with its shim dead.
// The shim is the container init's parent, and init dies with it (its
// parent-death signal is SIGKILL), taking the payload along: Docker shows
// a container killed so as "Exited (137)", 128 + SIGKILL.
const shimDiedCode = 128 + int(syscall.SIGKILL)

// errRemovedOnDiscovery marks a --rm container found dead and removed.
var errRemovedOnDiscovery = errors.New("removed when found dead, as --rm asked")

// settleDead records a container whose state says running but whose shim
// is gone: exited with shimDiedCode, finished when it was found so (the
// moment it died is nowhere recorded), written once so every later look
// agrees. A --rm container found so is removed, as its owner asked; it
// reports whether it was. It holds the container's lock meanwhile, which
// only a dead shim leaves free, so a start or another settling waits.
func (m *Manager) settleDead(c *Container) (removed bool) {
	unlock, err := c.lockStopped()
	if err != nil {
		return false // a shim, or a start, holds it
	}
	if b, err := c.fs.ReadFile(c.file(stateFile)); err == nil {
		_ = json.Unmarshal(b, &c.State) // another command may have settled it first
	}
	if c.State.Status == StatusRunning {
		c.State.Status = StatusExited
		c.State.ExitCode = shimDiedCode
		c.State.Error = "the container's shim died, and its processes with it"
		c.State.FinishedAt = time.Now().UTC()
		c.State.Pid, c.State.ShimPid, c.State.Restarting = 0, 0, false
		if err := writeJSON(c.fs, c.file(stateFile), c.State); err != nil {
			m.log.Debug("recording a dead shim", "container", c.ID, "err", err)
		}
	}
	unlock()
	if !c.AutoRemove {
		return false
	}
	if err := m.Remove(c, false); err != nil {
		// The config went first: it is no container any more, and what is
		// left goes as debris.
		m.log.Debug("removing a --rm container found dead", "container", c.ID, "err", err)
	}
	return true
}
