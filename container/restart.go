package container

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"nook/container/shim"
)

// ParseRestart reads --restart no|on-failure[:N]|always|unless-stopped.
// The shim restarts the payload while it lives: nothing brings a
// container back after a reboot without a service manager.
func ParseRestart(s string) (RestartPolicy, error) {
	name, n, hasN := strings.Cut(s, ":")
	p := RestartPolicy{Name: name}
	switch {
	case name == "on-failure" && hasN:
		max, err := strconv.Atoi(n)
		if err != nil || max < 0 {
			return p, fmt.Errorf("--restart %q: the retry count must be a number ≥ 0", s)
		}
		p.MaximumRetryCount = max
	case hasN:
		return p, fmt.Errorf("--restart %q: only on-failure takes a retry count", s)
	case name == "no" || name == "on-failure" || name == "always" || name == "unless-stopped":
	default:
		return p, fmt.Errorf("--restart %q: want no, on-failure[:N], always or unless-stopped", s)
	}
	return p, nil
}

// shimRestart is the policy as the shim applies it.
func (p RestartPolicy) shimRestart() shim.Restart {
	return shim.Restart{Name: p.Name, MaxRetries: p.MaximumRetryCount}
}

// endsPolicy tells c's shim not to restart the payload when sig is one
// that ends it (stop and kill's), as Docker's kill turns the policy off
// until the next start; a signal such as SIGHUP or SIGUSR1 leaves it.
func (c *Container) endsPolicy(sig syscall.Signal) error {
	if !c.RestartPolicy.shimRestart().Restarts() {
		return nil
	}
	stop := syscall.SIGTERM
	if s, err := ParseSignal(c.StopSignal); err == nil && c.StopSignal != "" {
		stop = s
	}
	switch sig {
	case stop, syscall.SIGKILL, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT:
	default:
		return nil
	}
	if err := c.fs.WriteFile(c.file(shim.StopFile), nil, 0o600); err != nil {
		return fmt.Errorf("marking %s stopped: %w", c.Name, err)
	}
	return nil
}
