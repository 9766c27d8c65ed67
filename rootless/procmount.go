package rootless

import (
	"errors"
	"fmt"
	"path"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
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

// maskedPaths are hidden from an unprivileged container, as Docker's
// default spec hides them (its MaskedPaths): what the kernel says there
// about the host (its memory, keys, timers, scheduler, firmware) is none
// of the container's business. A file is covered by /dev/null, a
// directory by an empty read-only tmpfs.
var maskedPaths = []string{
	"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
	"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
	"/sys/firmware", "/sys/devices/virtual/powercap",
}

// readonlyPaths are made read-only, as Docker's ReadonlyPaths are: the
// host's kernel settings and triggers.
var readonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}

// maskProc applies maskedPaths and readonlyPaths below root, once /proc
// and /sys are mounted there; a path the kernel does not have is skipped.
// --privileged skips it all, as Docker's does.
func maskProc(root string) error {
	for _, p := range maskedPaths {
		if err := maskPath(filepath.Join(root, p)); err != nil {
			return fmt.Errorf("masking %s: %w", p, err)
		}
	}
	for _, p := range readonlyPaths {
		t := filepath.Join(root, p)
		err := unix.Mount(t, t, "", unix.MS_BIND|unix.MS_REC, "")
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err == nil {
			err = setReadOnly(t, true)
		}
		if err != nil {
			return fmt.Errorf("making %s read-only: %w", p, err)
		}
	}
	return nil
}

// maskPath covers the file or directory p, as runc's maskPath does.
func maskPath(p string) error {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=0")
	}
	return unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
}
