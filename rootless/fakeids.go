package rootless

// Faked identity calls in single-id mode. A user namespace that maps one
// id cannot give a file another owner, switch to another id or make a
// device node: chown gives EINVAL, setgroups and mknod EPERM, and package
// managers (apt's setgroups, dpkg's chowns, useradd) die of it. Under
// this seccomp filter those calls succeed without effect, as Charliecloud's
// ch-run --seccomp makes them; the chown family instead goes to a
// supervisor (SECCOMP_RET_USER_NOTIF: the shim, ServeOwners) that records
// the owner meant in the file's user.rootlesscontainers attribute, so that
// an image made from the container keeps it. It is never installed where
// the namespace maps more than one id: there the calls work for real.
//
//	init (locked thread)                         shim
//	seccomp(SET_MODE_FILTER, NEW_LISTENER) = fd
//	fork + exec payload (inherits the filter)
//	  ──── status {Pid, Notify} + fd (SCM_RIGHTS) ──▶  ServeOwners(fd)
//	payload: chown(path, uid, gid) ── blocks ──▶ NOTIF_RECV: reads path from
//	                                             /proc/PID/mem, NOTIF_ID_VALID,
//	                                             records the owner
//	         returns 0 ◀────────────────────────  NOTIF_SEND {val 0}

import (
	"fmt"
	"os"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// FakeIDs modes, spelled as Charliecloud's ch-image --force spells them.
const (
	FakeIDsSeccomp = "seccomp" // the default in single-id mode
	FakeIDsNone    = "none"    // identity calls fail as the kernel says
)

// SingleIDNamespace reports whether our user namespace maps one uid only,
// the only case in which the identity calls are faked.
func SingleIDNamespace() bool {
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return false
	}
	var total uint64
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var in, out, n uint64
		if _, err := fmt.Sscan(line, &in, &out, &n); err == nil {
			total += n
		}
	}
	return total == 1
}

// seccomp_data offsets (linux/seccomp.h).
const (
	offNr   = 0
	offArch = 4
	offArgs = 16 // args[i] at offArgs+8*i; its low half first (little-endian)
)

// fakeIDsFilter is the filter program: the chown family notified (or
// faked when notify is false), the id setters faked, mknod and mknodat of
// character and block devices faked, everything else allowed.
func fakeIDsFilter(notify bool) []unix.SockFilter {
	chownRet := uint32(unix.SECCOMP_RET_ERRNO) // errno 0: success, nothing done
	if notify {
		chownRet = unix.SECCOMP_RET_USER_NOTIF
	}
	var p []unix.SockFilter
	stmt := func(code uint16, k uint32) { p = append(p, unix.SockFilter{Code: code, K: k}) }
	// jeq k: fall through on a match, skip the next instruction otherwise.
	jne := func(k uint32) {
		p = append(p, unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: k, Jt: 0, Jf: 1})
	}
	ret := func(k uint32) { stmt(unix.BPF_RET|unix.BPF_K, k) }
	stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offArch)
	p = append(p, unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: auditArch, Jt: 1, Jf: 0})
	ret(unix.SECCOMP_RET_ALLOW)
	stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offNr)
	for _, nr := range chownCalls {
		jne(nr)
		ret(chownRet)
	}
	for _, nr := range idSetterCalls {
		jne(nr)
		ret(unix.SECCOMP_RET_ERRNO)
	}
	for _, c := range mknodCalls {
		// if nr == c.nr { A = mode; A &= S_IFMT; if A is CHR or BLK: fake }
		p = append(p, unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: c.nr, Jt: 0, Jf: 6})
		stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, uint32(offArgs+8*c.modeArg))
		stmt(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, unix.S_IFMT)
		p = append(p, unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: unix.S_IFCHR, Jt: 1, Jf: 0})
		p = append(p, unix.SockFilter{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, K: unix.S_IFBLK, Jt: 0, Jf: 1})
		ret(unix.SECCOMP_RET_ERRNO)
		ret(unix.SECCOMP_RET_ALLOW)
	}
	ret(unix.SECCOMP_RET_ALLOW)
	return p
}

// installFakeIDs installs the filter on the calling thread (locked by the
// caller; the payload it forks inherits it) and returns the notification
// listener when notify is set. Init holds CAP_SYS_ADMIN in its namespace,
// so no_new_privs is not needed.
func installFakeIDs(notify bool) (*os.File, error) {
	prog := fakeIDsFilter(notify)
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	flags := uintptr(0)
	if notify {
		flags = unix.SECCOMP_FILTER_FLAG_NEW_LISTENER
	}
	fd, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(&fprog)))
	if errno != 0 {
		return nil, fmt.Errorf("installing the single-id seccomp filter: %w", errno)
	}
	if !notify {
		return nil, nil
	}
	unix.CloseOnExec(int(fd))
	return os.NewFile(fd, "seccomp-notify"), nil
}

// aptConf is apt's configuration under faked ids: apt drops to _apt
// and then reads its ids back ("Could not switch group"), which no
// stateless filter can fake, so it is told not to read them back; it
// still chowns its files to _apt, as it does with a full map, and those
// owners are recorded. It lives on the container's /dev (a tmpfs of
// init's, never part of an image) and is named by APT_CONFIG, which apt
// reads after /etc/apt/apt.conf.d.
const (
	aptConfPath = "/dev/.nook-apt.conf"
	aptConf     = "// nook: single-id mode fakes id changes; apt must not verify them.\n" +
		"APT::Sandbox::Verify::IDs \"false\";\nAPT::Sandbox::Verify::Groups \"false\";\n"
)

// aptNoSandbox writes aptConf and names it in env, unless env names a
// configuration of its own or the file cannot be written.
func aptNoSandbox(env []string) []string {
	for _, kv := range env {
		if strings.HasPrefix(kv, "APT_CONFIG=") {
			return env
		}
	}
	if _, err := os.Stat(aptConfPath); err != nil {
		if err := os.WriteFile(aptConfPath, []byte(aptConf), 0o644); err != nil {
			return env
		}
	}
	return append(env, "APT_CONFIG="+aptConfPath)
}
