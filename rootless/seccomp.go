package rootless

import (
	"fmt"
	"os"
	"sync"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"nook/internal/seccomp"
)

// confine puts the calling thread, and so the payload it forks or execs,
// under p's seccomp filter (InitProcess.Seccomp). The caller has locked
// its goroutine to the thread and never unlocks it once confined: the
// filter is the thread's. Init holds CAP_SYS_ADMIN in its user namespace,
// so no_new_privs is not needed (and not set: setuid programs of the
// container keep working, as in Docker).
//
// In single-id mode (p.fakesIDs) the identity calls are faked ahead of
// the profile (fakeIDRules, also when unconfined), and with notify the
// chowns go to the returned listener.
func confine(p InitProcess, notify bool) (*os.File, error) {
	fake := p.fakesIDs()
	get := p.filter
	if get == nil {
		get = func() ([]unix.SockFilter, error) { return compileFilter(p, fake, notify) }
	}
	filter, err := get()
	if err != nil || filter == nil {
		return nil, err
	}
	flags := uint(0)
	if fake && notify {
		flags = seccomp.FlagNewListener
	}
	fd, err := seccomp.Install(filter, flags)
	Trace("init seccomp installed")
	if err != nil || fd < 0 {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "seccomp-notify"), nil
}

// fakesIDs says whether p's identity calls are faked: in single-id mode,
// unless --force=none.
func (p InitProcess) fakesIDs() bool {
	return p.FakeIDs != FakeIDsNone && SingleIDNamespace()
}

// compileAhead compiles the filter confine installs in the background and
// returns what waits for it: compiling Docker's profile takes a few
// tenths of a millisecond, which init's setup of the root hides.
func compileAhead(p InitProcess, notify bool) func() ([]unix.SockFilter, error) {
	type result struct {
		filter []unix.SockFilter
		err    error
	}
	ch := make(chan result, 1)
	go func() {
		f, err := compileFilter(p, p.fakesIDs(), notify)
		Trace("init seccomp compiled")
		ch <- result{f, err}
	}()
	return sync.OnceValues(func() ([]unix.SockFilter, error) {
		r := <-ch
		return r.filter, r.err
	})
}

// compileFilter is the filter p.Seccomp names (nil for none), for p's
// capabilities, with the faked identity calls ahead of it when fake (p
// fakes them in its namespace: InitProcess.fakesIDs).
func compileFilter(p InitProcess, fake, notify bool) ([]unix.SockFilter, error) {
	prof, err := SeccompProfile(p.Seccomp)
	if err != nil {
		return nil, err
	}
	var rules []seccomp.Rule
	if fake {
		if prof == nil {
			prof = &seccomp.Profile{LinuxSeccomp: specs.LinuxSeccomp{DefaultAction: specs.ActAllow}}
		}
		rules = fakeIDRules(notify)
	}
	if prof == nil {
		return nil, nil
	}
	filter, err := seccomp.Compile(prof, p.keptCaps(), rules...)
	if err != nil {
		return nil, fmt.Errorf("compiling the seccomp profile: %w", err)
	}
	return filter, nil
}

// SeccompProfile is the profile spec names: Docker's default when spec is
// empty, nil for "unconfined", else the profile spec holds in Docker's
// JSON.
func SeccompProfile(spec string) (*seccomp.Profile, error) {
	switch spec {
	case "":
		return seccomp.Default(), nil
	case seccomp.Unconfined:
		return nil, nil
	}
	return seccomp.Parse([]byte(spec), "the container's seccomp profile")
}
