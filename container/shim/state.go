package shim

import (
	"encoding/json"
	"path/filepath"
	"time"

	"nook/internal/atomicfile"
)

// Files of a container directory the shim writes.
const (
	StateFile = "state.json"
	LogFile   = "container.log"
)

// Container statuses, as Docker names them.
const (
	StatusCreated = "created"
	StatusRunning = "running"
	StatusExited  = "exited"
)

// State is where a container is in its life. The shim writes it (the
// CLI's create the first one).
type State struct {
	Status       string `json:"status"`
	Pid          int    `json:"pid,omitempty"`          // the container's pid 1, in the host's pid namespace
	ShimPid      int    `json:"shimPid,omitempty"`      // the shim serving the root
	AttachSocket string `json:"attachSocket,omitempty"` // the shim's attach listener
	ExitCode     int    `json:"exitCode"`
	RestartCount int    `json:"restartCount,omitempty"` // restarts by the policy
	// Restarting: the payload exited (ExitCode, FinishedAt) and the
	// policy starts it again after its delay; Status stays running, as
	// Docker's State.Running does, and Pid is 0.
	Restarting bool   `json:"restarting,omitempty"`
	Cgroup     string `json:"cgroup,omitempty"` // the container's cgroup directory, with its limits
	// ExecPrograms says the shim answers FrameExecProgram (a shim of an
	// older nook never does).
	ExecPrograms bool `json:"execPrograms,omitempty"`

	Error      string    `json:"error,omitempty"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
}

// WriteState records st in the container directory dir, by rename so that
// readers never see half a file. It does not fsync: that would cost `run`
// milliseconds, and after a crash the state is settled again from the
// shim's lock anyway.
func WriteState(dir string, st State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Replace(filepath.Join(dir, StateFile), b, 0o600)
}
