package rootless

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
)

// CheckProcMount refuses a mount target (an absolute path inside the
// container) over the container's own /proc or /sys, or inside /proc, as
// runc's checkProcMount does: a host directory there would hide or forge
// what the kernel says about the container (its mounts, its processes,
// its limits), and a bind under /proc could reach the host's through the
// kernel's own links. The files lxcfs emulates stay allowed, as runc
// allows them.
func CheckProcMount(target string) error {
	t := path.Clean(target)
	switch {
	case t == "/proc" || t == "/sys":
		return fmt.Errorf("%s is the container's own and cannot be mounted over", t)
	case strings.HasPrefix(t, "/proc/"):
		switch t {
		case "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
			"/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/net/dev", "/proc/sys/kernel/ns_last_pid":
			return nil
		}
		return fmt.Errorf("%s is inside /proc and cannot be mounted over", t)
	}
	return nil
}

// checkResolvedMount applies CheckProcMount to where target leads inside
// root, symbolic links of the image included: "-v HOST:/x" with /x a link
// to /proc would otherwise pass the check of the name as given.
func checkResolvedMount(root, target string) error {
	p, err := securejoin.SecureJoin(root, target)
	if err != nil {
		return fmt.Errorf("resolving mount point %s: %w", target, err)
	}
	rel, err := filepath.Rel(root, p)
	if err != nil {
		return fmt.Errorf("resolving mount point %s: %w", target, err)
	}
	if err := CheckProcMount("/" + rel); err != nil {
		return fmt.Errorf("mount point %s, through a link: %w", target, err)
	}
	return nil
}
