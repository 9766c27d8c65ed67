package container

import (
	"fmt"
	"strings"
)

// Limits are the resource limits Docker's -m/--memory, --cpus and
// --pids-limit ask for.
type Limits struct {
	Memory    int64   // bytes; 0: none
	CPUs      float64 // 0: none
	PidsLimit int64   // 0: none
}

// flags names the limits set, as the flags are named.
func (l Limits) flags() []string {
	var f []string
	if l.Memory != 0 {
		f = append(f, "--memory")
	}
	if l.CPUs != 0 {
		f = append(f, "--cpus")
	}
	if l.PidsLimit != 0 {
		f = append(f, "--pids-limit")
	}
	return f
}

// CheckLimits refuses limits this host cannot apply, in one line saying
// why: they need a delegated cgroup v2 subtree with the cpu, memory and
// pids controllers (what `nook info`'s cgroups check reports), and nook
// does not place containers in one yet.
func CheckLimits(l Limits) error {
	f := l.flags()
	if len(f) == 0 {
		return nil
	}
	what := strings.Join(f, ", ")
	c := checkCgroup(realHost())
	if c.Verdict != VerdictOK {
		e := &HostError{Problem: fmt.Sprintf("%s: resource limits need a delegated cgroup v2 subtree, and this host has none: %s", what, c.Detail),
			Remedy: c.Remedy}
		if e.Remedy == "" {
			return fmt.Errorf("%s", e.Problem)
		}
		return e
	}
	return fmt.Errorf("%s: nook does not yet place containers in the delegated cgroup v2 subtree (%s)", what, c.Detail)
}
