package container

import (
	"fmt"
	"runtime"
	"strings"

	"nook/internal/cgroups"
)

// Limits are the resource limits Docker's -m/--memory, --cpus and
// --pids-limit ask for, which the shim applies through a cgroup of the
// user's delegated cgroup v2 subtree (internal/cgroups). That path was
// tested against directory trees only: the host nook was developed on has
// hybrid cgroups, where nothing can be delegated.
type Limits = cgroups.Limits

// limitFlags names the limits set, as the flags are named.
func limitFlags(l Limits) []string {
	var f []string
	if l.Memory != 0 {
		f = append(f, "--memory")
	}
	if l.NanoCPUs != 0 {
		f = append(f, "--cpus")
	}
	if l.Pids != 0 {
		f = append(f, "--pids-limit")
	}
	return f
}

// CheckLimits refuses limits this host cannot apply, in one line saying
// why: they need a delegated cgroup v2 subtree with the controllers they
// use (what `nook info`'s cgroups check reports).
func CheckLimits(l Limits) error {
	if !l.Set() {
		return nil
	}
	// Docker's range: a hundredth of a CPU up to every CPU the host has.
	if n := int64(runtime.NumCPU()); l.NanoCPUs != 0 && (l.NanoCPUs < 1e7 || l.NanoCPUs > n*1e9) {
		return fmt.Errorf("--cpus: range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", n, n)
	}
	t, err := cgroups.Host()
	if err == nil {
		if err = t.Check(l.Controllers()); err == nil {
			return nil
		}
	}
	what := strings.Join(limitFlags(l), ", ")
	c := checkCgroup(realHost())
	detail, remedy := c.Detail, c.Remedy
	if c.Verdict == VerdictOK {
		detail, remedy = err.Error(), "" // a controller these limits need, missing
	}
	e := &HostError{Problem: fmt.Sprintf("%s: resource limits need a delegated cgroup v2 subtree, and this host has none: %s", what, detail),
		Remedy: remedy}
	if e.Remedy == "" {
		return fmt.Errorf("%s", e.Problem)
	}
	return e
}
