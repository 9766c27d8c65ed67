package rootless

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"

	"nook/internal/seccomp"
)

// confine puts the calling thread, and so the payload it forks, under p's
// seccomp filter (InitProcess.Seccomp). The caller has locked its
// goroutine to the thread and never unlocks it once confined: the filter
// is the thread's. Init holds CAP_SYS_ADMIN in its user namespace, so
// no_new_privs is not needed (and not set: setuid programs of the
// container keep working, as in Docker).
func confine(p InitProcess) error {
	get := p.filter
	if get == nil {
		get = func() ([]unix.SockFilter, error) { return compileFilter(p.Seccomp) }
	}
	filter, err := get()
	if err != nil || filter == nil {
		return err
	}
	_, err = seccomp.Install(filter, 0)
	Trace("init seccomp installed")
	return err
}

// compileAhead compiles spec's filter in the background and returns what
// waits for it: compiling Docker's profile takes a few tenths of a
// millisecond, which init's setup of the root hides.
func compileAhead(spec string) func() ([]unix.SockFilter, error) {
	type result struct {
		filter []unix.SockFilter
		err    error
	}
	ch := make(chan result, 1)
	go func() {
		f, err := compileFilter(spec)
		Trace("init seccomp compiled")
		ch <- result{f, err}
	}()
	return sync.OnceValues(func() ([]unix.SockFilter, error) {
		r := <-ch
		return r.filter, r.err
	})
}

// compileFilter is the filter spec names (nil for none), for Docker's
// default capabilities.
func compileFilter(spec string) ([]unix.SockFilter, error) {
	p, err := SeccompProfile(spec)
	if err != nil || p == nil {
		return nil, err
	}
	var caps []string
	for _, c := range dockerCaps() {
		caps = append(caps, c.name)
	}
	filter, err := seccomp.Compile(p, caps)
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
