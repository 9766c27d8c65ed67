package rootless

import (
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// TraceEnv, set to 1, makes every nook process print a timestamped line on
// stderr at each step of starting a container, to see where a `run` spends
// its time: `NOOK_TRACE=1 nook run --rm IMG true 2>&1 | grep nook-trace`.
// Set to an absolute path, it appends the lines to that file instead, so
// that a detached shim's reach it too. The stages inherit it; the payload
// does not (init gives it its own environment).
const TraceEnv = "NOOK_TRACE"

// Trace prints event with the wall-clock time in microseconds and the pid,
// so the lines of all processes of a run sort into one timeline. Off (one
// getenv) unless TraceEnv is set.
func Trace(event string) {
	to := os.Getenv(TraceEnv)
	if to != "1" && !filepath.IsAbs(to) {
		return
	}
	now := time.Now()
	b := make([]byte, 0, 80)
	b = append(b, "nook-trace "...)
	b = strconv.AppendInt(b, now.UnixMicro(), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(os.Getpid()), 10)
	b = append(b, ' ')
	b = append(b, event...)
	b = append(b, '\n')
	if to == "1" {
		_, _ = os.Stderr.Write(b)
		return
	}
	// One write of O_APPEND: the processes' lines do not interleave.
	if f, err := os.OpenFile(to, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); err == nil {
		_, _ = f.Write(b)
		f.Close()
	}
}
