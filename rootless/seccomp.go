package rootless

import (
	"fmt"
	"os"

	"github.com/opencontainers/runtime-spec/specs-go"

	"nook/internal/seccomp"
)

// confine puts the calling thread, and so the payload it forks, under the
// seccomp filter spec names (InitProcess.Seccomp): Docker's default
// profile when empty, none when "unconfined", else the profile spec holds
// in Docker's JSON. The caller has locked its goroutine to the thread and
// never unlocks it once confined: the filter is the thread's. Init holds
// CAP_SYS_ADMIN in its user namespace, so no_new_privs is not needed (and
// not set: setuid programs of the container keep working, as in Docker).
//
// With fake (single-id mode) the identity calls are faked ahead of the
// profile (fakeIDRules, also when unconfined), and with notify the chowns
// go to the returned listener.
func confine(spec string, fake, notify bool) (*os.File, error) {
	p, err := SeccompProfile(spec)
	if err != nil {
		return nil, err
	}
	var rules []seccomp.Rule
	flags := uint(0)
	if fake {
		if p == nil {
			p = &seccomp.Profile{LinuxSeccomp: specs.LinuxSeccomp{DefaultAction: specs.ActAllow}}
		}
		rules = fakeIDRules(notify)
		if notify {
			flags = seccomp.FlagNewListener
		}
	}
	if p == nil {
		return nil, nil
	}
	var caps []string
	for _, c := range dockerCaps() {
		caps = append(caps, c.name)
	}
	filter, err := seccomp.Compile(p, caps, rules...)
	if err != nil {
		return nil, fmt.Errorf("compiling the seccomp profile: %w", err)
	}
	fd, err := seccomp.Install(filter, flags)
	if err != nil || fd < 0 {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "seccomp-notify"), nil
}

// SeccompProfile is the profile spec names (see confine), or nil for
// "unconfined".
func SeccompProfile(spec string) (*seccomp.Profile, error) {
	switch spec {
	case "":
		return seccomp.Default(), nil
	case seccomp.Unconfined:
		return nil, nil
	}
	return seccomp.Parse([]byte(spec), "the container's seccomp profile")
}
