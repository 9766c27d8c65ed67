package container

import (
	"fmt"
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
