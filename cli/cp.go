package cli

import (
	"errors"
	"os"
	"strings"

	"golang.org/x/term"

	"nook/container"
)

// CpCmd is `nook cp`.
type CpCmd struct {
	Archive    bool   `short:"a" help:"Keep owners (uid and gid); otherwise the receiving side's root (the container's, or you) owns the copy."`
	FollowLink bool   `short:"L" help:"Follow a symbolic link given as the source."`
	Src        string `arg:"" help:"CONTAINER:SRC_PATH, or a host path, or - for a tar on stdin."`
	Dst        string `arg:"" help:"CONTAINER:DEST_PATH, or a host path, or - for a tar on stdout."`
}

// Run copies between a container and the host, running or stopped.
func (c *CpCmd) Run(g *Globals) error {
	srcCtr, src := splitCpArg(c.Src)
	dstCtr, dst := splitCpArg(c.Dst)
	switch {
	case srcCtr != "" && dstCtr != "":
		return errors.New("copying between containers is not supported")
	case srcCtr == "" && dstCtr == "":
		return errors.New("must specify at least one container source (CONTAINER:PATH)")
	case srcCtr != "" && src == "-", dstCtr != "" && dst == "-":
		return errors.New(`"-" stands for a tar on stdin or stdout, not a path in a container`)
	}
	if f, ok := g.Stdout.(*os.File); ok && dst == "-" && term.IsTerminal(int(f.Fd())) {
		return errors.New("cowardly refusing to write a tar to a terminal. Redirect the output")
	}
	if dstCtr != "" {
		// A running container is entered from here, where its
		// namespaces can be joined; only a stopped one's filesystem is
		// mounted, in namespaces of our own.
		if m, err := g.openContainers(); err == nil {
			if ctr, err := m.Get(dstCtr); err == nil && ctr.Running() {
				return m.CopyToContainer(ctr, src, g.Stdin, dst, container.CopyOptions{Archive: c.Archive, FollowLink: c.FollowLink})
			}
		}
	}
	if done, err := g.enterMountNS(); done {
		return err
	}
	m, err := g.openContainers()
	if err != nil {
		return err
	}
	o := container.CopyOptions{Archive: c.Archive, FollowLink: c.FollowLink}
	if srcCtr != "" {
		ctr, err := m.Get(srcCtr)
		if err != nil {
			return err
		}
		return m.CopyFromContainer(ctr, src, dst, g.Stdout, o)
	}
	ctr, err := m.Get(dstCtr)
	if err != nil {
		return err
	}
	return m.CopyToContainer(ctr, src, g.Stdin, dst, o)
}

// splitCpArg splits CONTAINER:PATH as Docker does: an absolute path, a
// path starting with "." or one without a colon is the host's.
func splitCpArg(arg string) (ctr, p string) {
	if strings.HasPrefix(arg, "/") {
		return "", arg
	}
	ctr, p, ok := strings.Cut(arg, ":")
	if !ok || ctr == "" || strings.HasPrefix(ctr, ".") {
		return "", arg
	}
	return ctr, p
}
