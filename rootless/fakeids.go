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
//	seccomp(SET_MODE_FILTER, NEW_LISTENER) = fd  (these rules, then the
//	                                             container's profile: confine)
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

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"nook/internal/seccomp"
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
	return err == nil && mapsOneID(string(b))
}

// mapsOneID reports whether uid_map, as /proc shows it, maps one id.
func mapsOneID(uidMap string) bool {
	var total uint64
	for _, line := range strings.Split(strings.TrimSpace(uidMap), "\n") {
		var in, out, n uint64
		if _, err := fmt.Sscan(line, &in, &out, &n); err == nil {
			total += n
		}
	}
	return total == 1
}

// fakeIDRules are the single-id rules, ahead of the container's profile:
// the chown family notified (or faked when notify is false), the id
// setters faked, mknod and mknodat of character and block devices faked.
func fakeIDRules(notify bool) []seccomp.Rule {
	chown := seccomp.Errno(0) // success, nothing done
	if notify {
		chown = seccomp.UserNotif
	}
	rules := []seccomp.Rule{
		{Names: []string{"chown", "fchown", "lchown", "fchownat"}, Action: chown},
		{Names: []string{"setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid",
			"setfsuid", "setfsgid", "setgroups"}, Action: seccomp.Errno(0)},
	}
	for _, typ := range []uint64{unix.S_IFCHR, unix.S_IFBLK} {
		for _, c := range []struct {
			name    string
			modeArg uint
		}{{"mknod", 1}, {"mknodat", 2}} {
			rules = append(rules, seccomp.Rule{Names: []string{c.name}, Action: seccomp.Errno(0),
				Args: []seccomp.Arg{{Index: c.modeArg, Value: unix.S_IFMT, ValueTwo: typ, Op: specs.OpMaskedEqual}}})
		}
	}
	return rules
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
