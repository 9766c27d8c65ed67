package shim

// Restart policies: the shim starts the payload again while it lives,
// as Docker's daemon does. Nothing outlives the shim: after a reboot, or
// once the shim is killed, only a service manager starts containers.

import (
	"os"
	"path/filepath"
	"time"
)

// StopFile in the container directory says the container was stopped on
// purpose (`nook stop`): the shim does not restart it.
const StopFile = "stopping"

// Restart is a container's restart policy.
type Restart struct {
	Name       string `json:",omitempty"` // "", "no", "on-failure", "always", "unless-stopped"
	MaxRetries int    `json:",omitempty"` // on-failure's limit; 0 is none
}

// Restarts reports whether the policy can restart at all.
func (r Restart) Restarts() bool { return r.Name != "" && r.Name != "no" }

// again reports whether a payload that exited with code after restarts
// restarts is started again.
func (r Restart) again(code, restarts int) bool {
	switch r.Name {
	case "always", "unless-stopped":
		return true
	case "on-failure":
		return code != 0 && (r.MaxRetries == 0 || restarts < r.MaxRetries)
	}
	return false
}

// restartDelay is Docker's back-off: 100 ms, doubled on each restart of
// a payload that ran less than 10 s, at most a minute.
func restartDelay(prev, ran time.Duration) time.Duration {
	switch {
	case prev == 0 || ran >= 10*time.Second:
		return 100 * time.Millisecond
	case 2*prev > time.Minute:
		return time.Minute
	}
	return 2 * prev
}

// stopped reports whether `nook stop` asked the container to end.
func (s *shim) stopped() bool {
	_, err := os.Stat(filepath.Join(s.cfg.Dir, StopFile))
	return err == nil
}
