package container

import (
	"errors"
	"io"
	"strings"

	"nook/container/rootcopy"
)

// Errors of cp that callers and tests branch on (see package rootcopy).
var (
	ErrNoSuchPath = rootcopy.ErrNoSuchPath
	ErrCopyTarget = rootcopy.ErrCopyTarget
)

// CopyOptions are `nook cp`'s flags.
type CopyOptions struct {
	Archive    bool // keep owners (-a); otherwise the receiving side's root owns the copy
	FollowLink bool // follow a symbolic link given as the source (-L)
}

// CopyFromContainer copies src, a path in the container, to dst on the
// host, or as a tar to w when dst is "-", as `docker cp` does. It reads a
// read-only view of the container's filesystem, so the container may be
// running. Call it inside the user namespace, in a private mount
// namespace (see MountRootfs).
func (m *Manager) CopyFromContainer(c *Container, src, dst string, w io.Writer, o CopyOptions) error {
	root, err := m.MountRootfs(c, RootfsOptions{})
	if err != nil {
		return err
	}
	defer root.Close()
	from, err := rootcopy.Open(root.Dir, "container "+c.Name)
	if err != nil {
		return err
	}
	defer from.Close()
	host := rootcopy.Host()
	return m.copy(from, containerPath(src), host, dst, nil, w, o)
}

// CopyToContainer copies src on the host (a tar read from r when src is
// "-") to dst, a path in the container. A running container's init does
// the unpacking (cpin.go); a stopped one's writable layer is changed
// through a union mount of its own, and it cannot start until the copy
// is done.
func (m *Manager) CopyToContainer(c *Container, src string, r io.Reader, dst string, o CopyOptions) error {
	if c.Running() {
		return m.copyIntoRunning(c, src, r, dst, o)
	}
	root, err := m.MountRootfs(c, RootfsOptions{Writable: true})
	if errors.Is(err, ErrRunning) {
		// It started since c was read.
		if c, err = m.Get(c.ID); err != nil {
			return err
		}
		return m.copyIntoRunning(c, src, r, dst, o)
	}
	if err != nil {
		return err
	}
	defer root.Close()
	to, err := rootcopy.Open(root.Dir, "container "+c.Name)
	if err != nil {
		return err
	}
	host := rootcopy.Host()
	err = m.copy(host, src, to, containerPath(dst), r, nil, o)
	to.Close()
	if err != nil {
		return err
	}
	return root.Close() // an unmount error here may be lost data: report it
}

// containerPath makes a container path absolute: Docker takes paths in a
// container relative to its root.
func containerPath(p string) string {
	if p == "-" {
		return p
	}
	return "/" + strings.TrimLeft(p, "/")
}

// copy carries src of one side to dst of the other with `docker cp`'s
// rules (see rootcopy.Side.Target).
func (m *Manager) copy(from rootcopy.Side, src string, to rootcopy.Side, dst string, r io.Reader, w io.Writer, o CopyOptions) error {
	if src == "-" {
		return to.Extract(r, dst, rootcopy.KeepNames, o.Archive, m.log)
	}
	s, err := from.Source(src, o.FollowLink)
	if err != nil {
		return err
	}
	if dst == "-" {
		name := s.Name
		if s.Contents {
			name = ""
		}
		return from.Archive(w, src, o.FollowLink, name, m.log)
	}
	dir, name, err := to.Target(dst, s)
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		pw.CloseWithError(from.Archive(pw, src, o.FollowLink, name, m.log))
	}()
	err = to.Extract(pr, dir, rootcopy.KeepNames, o.Archive, m.log)
	pr.CloseWithError(io.ErrClosedPipe)
	<-done // nothing reads the source after the copy returns
	return err
}
