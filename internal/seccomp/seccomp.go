// Package seccomp builds and installs containers' seccomp filters: a
// profile in Docker's JSON format (moby's types, and moby's default
// profile as Default) compiled to classic BPF, plus rules a caller adds
// ahead of the profile's, such as nook's single-id mode faking the
// identity calls.
//
// It is used by the container's init, in the stages' program: it stays
// light (no maps or tables built at package init, no net/http).
//
//	p := seccomp.Default()               // or seccomp.Load(path)
//	filter, err := seccomp.Compile(p, caps, seccomp.Rule{
//		Names: []string{"chown", "fchown"}, Action: seccomp.UserNotif})
//	runtime.LockOSThread()               // the filter is the thread's
//	fd, err := seccomp.Install(filter, seccomp.FlagNewListener)
//
// Compile follows Docker's reading of a profile: rules are kept or left
// out by their includes/excludes (caps held, arch, minimum kernel),
// syscall names unknown on this architecture are skipped (the profile
// covers every architecture), and args of a rule must all match, except
// that several args on the same index each make a rule of their own (as
// runc does). Caller rules come first, then the profile's in order; for
// one syscall, the first rule that matches decides, rules with args
// before rules without. Only the native ABI is compiled: calls through
// another (x86's int 0x80, x32) fail with ENOSYS.
package seccomp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	mobyseccomp "github.com/moby/profiles/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Profile is a seccomp profile in Docker's JSON format.
type Profile = mobyseccomp.Seccomp

// Arg is a condition on one argument of a syscall.
type Arg = specs.LinuxSeccompArg

// Unconfined is the --security-opt seccomp value that applies no filter.
const Unconfined = "unconfined"

// ErrProfile is a profile that cannot be read or compiled.
var ErrProfile = errors.New("invalid seccomp profile")

// Default is Docker's default profile (moby/profiles), a fresh copy.
func Default() *Profile { return mobyseccomp.DefaultProfile() }

// Load reads a profile in Docker's JSON format from path.
func Load(path string) (*Profile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading seccomp profile: %w", err)
	}
	return Parse(data, path)
}

// Parse decodes a profile in Docker's JSON format; name says where it
// came from in errors, which are one line.
func Parse(data []byte, name string) (*Profile, error) {
	var p Profile
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&p); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			line := 1 + bytes.Count(data[:min(int(syn.Offset), len(data))], []byte("\n"))
			return nil, fmt.Errorf("%w %s: line %d: %v", ErrProfile, name, line, err)
		}
		return nil, fmt.Errorf("%w %s: %v", ErrProfile, name, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w %s: data after the profile", ErrProfile, name)
	}
	if p.DefaultAction == "" {
		return nil, fmt.Errorf("%w %s: no defaultAction", ErrProfile, name)
	}
	return &p, nil
}

// Action is what the filter returns for a call: a SECCOMP_RET_* value
// with its data.
type Action uint32

// Actions callers add rules with; Errno builds the one with an errno.
const (
	Allow       Action = unix.SECCOMP_RET_ALLOW
	UserNotif   Action = unix.SECCOMP_RET_USER_NOTIF
	Log         Action = unix.SECCOMP_RET_LOG
	Trap        Action = unix.SECCOMP_RET_TRAP
	KillThread  Action = unix.SECCOMP_RET_KILL_THREAD
	KillProcess Action = unix.SECCOMP_RET_KILL_PROCESS
)

// Errno fails the call with e; Errno(0) makes it succeed without running.
func Errno(e unix.Errno) Action {
	return Action(unix.SECCOMP_RET_ERRNO | uint32(e)&unix.SECCOMP_RET_DATA)
}

// Rule is a rule a caller adds ahead of a profile's.
type Rule struct {
	Names  []string
	Action Action
	Args   []Arg // all must match; none: every call of Names
}

// action turns a profile's action name and errnoRet into an Action.
func action(a specs.LinuxSeccompAction, errnoRet *uint) (Action, error) {
	switch a {
	case specs.ActAllow:
		return Allow, nil
	case specs.ActErrno:
		if errnoRet != nil {
			return Errno(unix.Errno(*errnoRet)), nil
		}
		return Errno(unix.EPERM), nil
	case specs.ActTrace:
		data := uint32(unix.EPERM)
		if errnoRet != nil {
			data = uint32(*errnoRet)
		}
		return Action(unix.SECCOMP_RET_TRACE | data&unix.SECCOMP_RET_DATA), nil
	case specs.ActKill, specs.ActKillThread:
		return KillThread, nil
	case specs.ActKillProcess:
		return KillProcess, nil
	case specs.ActTrap:
		return Trap, nil
	case specs.ActLog:
		return Log, nil
	case specs.ActNotify:
		return UserNotif, nil
	}
	return 0, fmt.Errorf("unknown action %q", a)
}

// filterCond is a rule's includes or excludes.
type filterCond = mobyseccomp.Filter
