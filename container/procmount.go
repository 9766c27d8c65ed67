package container

import (
	"fmt"
	"path"
	"strings"
)

// checkProcSys refuses a mount over the container's own /proc or /sys, or
// inside /proc, as runc's checkProcMount does: a host directory there
// would hide or forge what the kernel says about the container (its
// mounts, its processes, its limits), and a bind under /proc/sys or
// /proc/self could reach the host's through the kernel's own links.
func checkProcSys(s, target string) error {
	t := path.Clean(target)
	switch {
	case t == "/proc" || t == "/sys":
		return fmt.Errorf("mount %q: %s cannot be mounted over: it is the container's own", s, t)
	case strings.HasPrefix(t, "/proc/"):
		switch t {
		// What lxcfs emulates, which runc's checkProcMount allows.
		case "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
			"/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/net/dev", "/proc/sys/kernel/ns_last_pid":
			return nil
		}
		return fmt.Errorf("mount %q: %s cannot be mounted because it is inside /proc", s, t)
	}
	return nil
}
