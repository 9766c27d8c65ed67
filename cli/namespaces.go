package cli

import (
	"fmt"
	"io"

	"nook/rootless"
)

// stageCLI re-runs a verb inside new namespaces (see enterNamespaces).
const stageCLI = "cli"

// enterUserNS re-runs the current verb inside a new user namespace that
// maps the user's subordinate ids (rootless.Reenter). It reports
// done=true when the verb already ran there; the returned error then
// carries its exit status. As real root, or already inside, the verb just
// runs here.
func (g *Globals) enterUserNS() (done bool, err error) { return g.enterNamespaces(false) }

// enterMountNS is enterUserNS plus a private mount namespace, for verbs
// that mount a container's filesystem (export, cp).
func (g *Globals) enterMountNS() (done bool, err error) { return g.enterNamespaces(true) }

func (g *Globals) enterNamespaces(mounts bool) (done bool, err error) {
	r := rootless.Reenter{Stage: stageCLI, Args: g.Args, Stdin: g.Stdin, Stdout: g.Stdout, Stderr: g.Stderr, PrivateMounts: mounts}
	done, code, err := r.Run()
	if err == nil && code != 0 {
		err = ExitError{Code: code}
	}
	return done, err
}

// runInUserNS runs nook with args in a new user namespace (as
// enterUserNS does for the current verb), its stdout going to stdout.
// The caller checks first that it is not in one already.
func (g *Globals) runInUserNS(args []string, stdout io.Writer) error {
	r := rootless.Reenter{Stage: stageCLI, Args: args, Stdin: g.Stdin, Stdout: stdout, Stderr: g.Stderr}
	done, code, err := r.Run()
	switch {
	case err != nil:
		return err
	case !done:
		return fmt.Errorf("running %v: already in a user namespace", args)
	case code != 0:
		return ExitError{Code: code}
	}
	return nil
}
