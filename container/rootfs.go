package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"

	"nook/fusefs"
)

// Rootfs is a container's filesystem mounted for export or cp.
type Rootfs struct {
	Dir    string // the mount point
	srv    *fusefs.Server
	unlock func()
}

// RootfsOptions say how to mount a container's filesystem.
type RootfsOptions struct {
	// Writable mounts the writable layer for changes; the container must
	// be stopped, and cannot start until Close. Otherwise the mount is a
	// read-only view of the writable layer over the image's, which a
	// running container may keep changing underneath.
	Writable bool
}

// MountRootfs mounts the container's filesystem as the container sees
// it (without its volumes and the kernel filesystems) on a new temporary
// directory. Call it inside the user namespace, in a private mount
// namespace: the mount is the caller's alone and goes with the process.
func (m *Manager) MountRootfs(c *Container, o RootfsOptions) (*Rootfs, error) {
	lowers, err := m.Lowers(c)
	if err != nil {
		return nil, err
	}
	r := &Rootfs{unlock: func() {}}
	upper, work := "", ""
	if o.Writable {
		if r.unlock, err = c.lockStopped(); err != nil {
			return nil, err
		}
		upper, work = c.Upper(), filepath.Join(c.dir, "work")
	} else {
		lowers = append([]string{c.Upper()}, lowers...)
	}
	if r.Dir, err = os.MkdirTemp("", "nook-rootfs-"); err != nil {
		r.unlock()
		return nil, fmt.Errorf("making a mount point: %w", err)
	}
	// The union's server shares this process with a copy through it (cp,
	// export): give it the Ps it wants (fusefs.Procs).
	if p := fusefs.Procs(); runtime.GOMAXPROCS(0) < p {
		runtime.GOMAXPROCS(p)
	}
	r.srv, err = fusefs.Mount(lowers, upper, work, r.Dir, fusefs.Options{Logger: m.log, Xattrs: fusefs.XattrsOn, FsName: "nook-" + c.ID[:12]})
	if err != nil {
		r.unlock()
		os.Remove(r.Dir)
		return nil, fmt.Errorf("mounting the filesystem of %s: %w", c.Name, err)
	}
	return r, nil
}

// Close unmounts the filesystem and lets the container start again. It
// may be called more than once. Descriptors opened under Dir must be
// closed first, or the unmount fails busy.
func (r *Rootfs) Close() error {
	if r.srv == nil {
		return nil
	}
	srv, unlock := r.srv, r.unlock
	r.srv, r.unlock = nil, func() {}
	defer unlock()
	if err := srv.Unmount(); err != nil {
		// Detach it: the mount namespace goes with the process anyway,
		// and waiting for the server would wait for the last descriptor.
		_ = unix.Unmount(r.Dir, unix.MNT_DETACH)
		return err
	}
	srv.Wait()
	os.Remove(r.Dir)
	return nil
}

// lockStopped takes the lock a shim holds while the container runs, so
// the container cannot start while its writable layer is changed beside
// it.
func (c *Container) lockStopped() (func(), error) {
	f, err := c.fs.OpenFile(c.file(lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", c.Name, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", c.Name, ErrRunning)
		}
		return nil, fmt.Errorf("locking %s: %w", c.Name, err)
	}
	return func() { f.Close() }, nil
}
