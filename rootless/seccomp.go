package rootless

import (
	"fmt"

	"nook/internal/seccomp"
)

// confine puts the calling thread, and so the payload it forks, under the
// seccomp filter spec names (InitProcess.Seccomp): Docker's default
// profile when empty, none when "unconfined", else the profile spec holds
// in Docker's JSON. The caller has locked its goroutine to the thread and
// never unlocks it once confined: the filter is the thread's. Init holds
// CAP_SYS_ADMIN in its user namespace, so no_new_privs is not needed (and
// not set: setuid programs of the container keep working, as in Docker).
func confine(spec string) error {
	p, err := SeccompProfile(spec)
	if err != nil || p == nil {
		return err
	}
	var caps []string
	for _, c := range dockerCaps() {
		caps = append(caps, c.name)
	}
	filter, err := seccomp.Compile(p, caps)
	if err != nil {
		return fmt.Errorf("compiling the seccomp profile: %w", err)
	}
	_, err = seccomp.Install(filter, 0)
	return err
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
