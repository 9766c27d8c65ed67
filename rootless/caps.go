package rootless

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// dockerCaps are the capabilities Docker leaves a container by default.
// Everything else leaves init's bounding set before the payload starts, so
// no process of the container, root or setuid, can hold it: without that,
// root in the container would keep the user namespace's every capability
// (mount, unshare, ptrace of the shim's other children...). Their names
// choose the seccomp profile's rules (includes/excludes caps).
func dockerCaps() []capability {
	return []capability{
		{unix.CAP_CHOWN, "CAP_CHOWN"}, {unix.CAP_DAC_OVERRIDE, "CAP_DAC_OVERRIDE"},
		{unix.CAP_FSETID, "CAP_FSETID"}, {unix.CAP_FOWNER, "CAP_FOWNER"}, {unix.CAP_MKNOD, "CAP_MKNOD"},
		{unix.CAP_NET_RAW, "CAP_NET_RAW"}, {unix.CAP_SETGID, "CAP_SETGID"}, {unix.CAP_SETUID, "CAP_SETUID"},
		{unix.CAP_SETFCAP, "CAP_SETFCAP"}, {unix.CAP_SETPCAP, "CAP_SETPCAP"},
		{unix.CAP_NET_BIND_SERVICE, "CAP_NET_BIND_SERVICE"}, {unix.CAP_SYS_CHROOT, "CAP_SYS_CHROOT"},
		{unix.CAP_KILL, "CAP_KILL"}, {unix.CAP_AUDIT_WRITE, "CAP_AUDIT_WRITE"},
	}
}

// capability is a capability's number and its name in profiles.
type capability struct {
	nr   uintptr
	name string
}

// dropCapabilities narrows the bounding set to dockerCaps, on the calling
// thread only: the set is per thread, so the caller locks its goroutine to
// the thread and forks from it (startProcess). Cutting it once on one
// thread let Go fork payloads and exec sessions from other threads with
// every capability. init keeps its own effective set, which it needs to
// start exec sessions as any user.
func dropCapabilities() error {
	last := lastCap()
	keep := map[uintptr]bool{}
	for _, c := range dockerCaps() {
		keep[c.nr] = true
	}
	for c := uintptr(0); c <= uintptr(last); c++ {
		if keep[c] {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, c, 0, 0, 0); err != nil {
			return fmt.Errorf("dropping capability %d: %w", c, err)
		}
	}
	// Stages start with every capability inheritable and ambient
	// (allCaps): an exec as root would add the inheritable set to the
	// payload's, bounding set or not.
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clearing ambient capabilities: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("reading capabilities: %w", err)
	}
	data[0].Inheritable, data[1].Inheritable = 0, 0
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("clearing inheritable capabilities: %w", err)
	}
	return nil
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
