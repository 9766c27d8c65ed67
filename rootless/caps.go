package rootless

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// dockerCaps are the names of the capabilities Docker leaves a container
// by default. Everything else leaves init's bounding set before the
// payload starts, so no process of the container, root or setuid, can
// hold it: without that, root in the container would keep the user
// namespace's every capability (mount, unshare, ptrace of the shim's
// other children...). The names also choose the seccomp profile's rules
// (includes/excludes caps).
func dockerCaps() []string {
	return []string{
		"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
		"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
		"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
	}
}

// capNames are the capabilities by number, as capabilities(7) names them.
func capNames() []string {
	return []string{
		"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
		"CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
		"CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
		"CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
		"CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
		"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
		"CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
		"CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
		"CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
	}
}

// ErrCapability is a capability name nook does not know.
var ErrCapability = errors.New("unknown capability")

// capAll stands for every capability in --cap-add and --cap-drop.
const capAll = "ALL"

// Capabilities are the capabilities a container keeps, by name, as Docker
// works them out from --cap-add and --cap-drop over its default set: ALL
// added starts from every capability, ALL dropped from none; names may
// lack the CAP_ prefix and any case goes. privileged keeps every one.
func Capabilities(add, drop []string, privileged bool) ([]string, error) {
	norm := func(list []string) (map[string]bool, error) {
		set := map[string]bool{}
		for _, n := range list {
			n = strings.ToUpper(n)
			if n != capAll && !strings.HasPrefix(n, "CAP_") {
				n = "CAP_" + n
			}
			if n != capAll && !slices.Contains(capNames(), n) {
				return nil, fmt.Errorf("%w %q", ErrCapability, n)
			}
			set[n] = true
		}
		return set, nil
	}
	adds, err := norm(add)
	if err != nil {
		return nil, err
	}
	drops, err := norm(drop)
	if err != nil {
		return nil, err
	}
	if privileged {
		return capNames(), nil
	}
	switch {
	case adds[capAll]:
		for _, n := range capNames() {
			adds[n] = true
		}
	case !drops[capAll]:
		for _, n := range dockerCaps() {
			adds[n] = true
		}
	}
	keep := []string{}
	for _, n := range capNames() {
		if adds[n] && !drops[n] {
			keep = append(keep, n)
		}
	}
	return keep, nil
}

// keptCaps are p's capabilities: Docker's default set unless it names
// them (nil: the default; empty: none).
func (p InitProcess) keptCaps() []string {
	if p.Caps == nil {
		return dockerCaps()
	}
	return p.Caps
}

// dropCapabilities narrows the bounding set to keep, on the calling
// thread only: the set is per thread, so the caller locks its goroutine to
// the thread and forks or execs from it (startProcess, execPayload).
// Cutting it once on one thread let Go fork payloads from other threads
// with every capability.
func dropCapabilities(keep []string) error {
	for _, c := range capDrops(keep) {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			return fmt.Errorf("%s: %w", stepDropCap(c), err)
		}
	}
	// Stages start with every capability inheritable and ambient
	// (allCaps): an exec as root would add the inheritable set to the
	// payload's, bounding set or not.
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("%s: %w", stepAmbient, err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("reading capabilities: %w", err)
	}
	data[0].Inheritable, data[1].Inheritable = 0, 0
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("%s: %w", stepInheritable, err)
	}
	return nil
}

// capDrops are the capabilities, by number, that leave the bounding set
// to keep only keep: every one this kernel knows but those.
func capDrops(keep []string) []int { return capDropsUpTo(keep, lastCap()) }

// capDropsUpTo is capDrops for a kernel whose last capability is last.
func capDropsUpTo(keep []string, last int) []int {
	names := capNames()
	var drops []int
	for c := 0; c <= last; c++ {
		if c < len(names) && slices.Contains(keep, names[c]) {
			continue
		}
		drops = append(drops, c)
	}
	return drops
}

// lastCap is the highest capability this kernel knows.
func lastCap() int {
	if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			return n
		}
	}
	return unix.CAP_LAST_CAP
}

// allCaps lists every capability this kernel knows: a stage started in a
// new user namespace gets them ambient, so that its exec keeps them
// before its uid is mapped (Cmd.command). They are the namespace's
// capabilities, nothing on the host.
func allCaps() []uintptr {
	caps := make([]uintptr, lastCap()+1)
	for i := range caps {
		caps[i] = uintptr(i)
	}
	return caps
}
