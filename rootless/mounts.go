package rootless

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// ttyGroup gives terminals to group tty (5), as Docker's devpts does, so
// write, mesg and script work inside.
const ttyGroup = "gid=5"

// systemMounts are the kernel filesystems every container gets, before
// its own mounts. /sys is handled apart (mountSys).
func systemMounts() []Mount {
	return []Mount{
		{Type: "proc", Source: "proc", Target: "/proc", Options: []string{"nosuid", "nodev", "noexec"}},
		{Type: "tmpfs", Source: "tmpfs", Target: "/dev", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Type: "devpts", Source: "devpts", Target: "/dev/pts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", ttyGroup}},
		{Type: "tmpfs", Source: "shm", Target: "/dev/shm", Options: []string{"nosuid", "nodev", "noexec", "mode=1777", "size=65536k"}},
		{Type: "mqueue", Source: "mqueue", Target: "/dev/mqueue", Options: []string{"nosuid", "nodev", "noexec"}},
	}
}

// setupRootfs mounts everything under cfg.Rootfs in init's own mount
// namespace, then makes it the root.
func setupRootfs(cfg *InitConfig) error {
	root := cfg.Rootfs
	// Nothing done here may reach the shim's namespace.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making / private: %w", err)
	}
	for i, m := range systemMounts() {
		err := mountInto(root, m)
		if errors.Is(err, unix.EINVAL) && slices.Contains(m.Options, ttyGroup) {
			// A single-id map has no group 5: terminals keep the
			// owner's group, as before the tty group.
			m.Options = slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return o == ttyGroup })
			err = mountInto(root, m)
		}
		if err != nil {
			return err
		}
		if i == 0 {
			if err := mountSys(root); err != nil {
				return err
			}
		}
	}
	if err := populateDev(root); err != nil {
		return err
	}
	for _, m := range cfg.Mounts {
		if err := checkResolvedMount(root, m.Target); err != nil {
			return err
		}
		if err := mountInto(root, m); err != nil {
			return err
		}
	}
	if !cfg.Unmasked {
		Trace("init masking")
		if err := maskProc(root); err != nil {
			return err
		}
		Trace("init masked")
	}
	if cwd := cfg.Process.Cwd; cwd != "" {
		// Docker creates a missing working directory; a read-only root
		// must get it before it turns read-only.
		p, err := securejoin.SecureJoin(root, cwd)
		if err == nil {
			err = os.MkdirAll(p, 0o755)
		}
		if pe := (*os.PathError)(nil); errors.As(err, &pe) {
			err = pe.Err // its path is the host's: the message names cwd
		}
		if err != nil {
			return fmt.Errorf("creating working directory %s: %w", cwd, err)
		}
	}
	return pivotRoot(root, cfg.ReadOnly)
}

// mountSys mounts sysfs, which needs a network namespace of our own; in
// the host's it is refused and the host's /sys is bound read-only instead.
func mountSys(root string) error {
	target, err := mountpoint(root, "/sys", true)
	if err != nil {
		return err
	}
	flags := uintptr(unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	err = unix.Mount("sysfs", target, "sysfs", flags, "")
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EPERM) {
		return fmt.Errorf("mounting sysfs on /sys: %w", err)
	}
	if err := unix.Mount("/sys", target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("binding the host's /sys: %w", err)
	}
	return setReadOnly(target, true)
}

// populateDev binds the host's devices into the new /dev (a user
// namespace cannot mknod) and adds the usual links.
func populateDev(root string) error {
	for _, d := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
		if err := mountInto(root, Mount{Type: "bind", Source: "/dev/" + d, Target: "/dev/" + d}); err != nil {
			return err
		}
	}
	dev := filepath.Join(root, "dev") // a fresh tmpfs: no symlinks to fear
	links := [][2]string{
		{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
		{"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"},
	}
	for _, l := range links {
		if err := os.Symlink(l[0], filepath.Join(dev, l[1])); err != nil {
			return fmt.Errorf("creating /dev/%s: %w", l[1], err)
		}
	}
	return nil
}

// mountInto makes one mount below root.
func mountInto(root string, m Mount) error {
	flags, data, ro := mountFlags(m.Options)
	isBind := m.Type == "bind"
	dir, err := needsDir(m)
	if err != nil {
		return err
	}
	target, err := mountpoint(root, m.Target, dir)
	if err != nil {
		return err
	}
	if isBind {
		if m.Populate {
			if err := populate(target, m.Source); err != nil {
				return fmt.Errorf("volume on %s: %w", m.Target, err)
			}
		}
		if err := unix.Mount(m.Source, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("binding %s on %s: %w", m.Source, m.Target, err)
		}
		if ro {
			return setReadOnly(target, true)
		}
		return nil
	}
	if ro {
		flags |= unix.MS_RDONLY
	}
	if err := unix.Mount(m.Source, target, m.Type, flags, data); err != nil {
		return fmt.Errorf("mounting %s on %s: %w", m.Type, m.Target, err)
	}
	return nil
}

// needsDir reports whether m's mount point is a directory: a bind of a
// file needs a file.
func needsDir(m Mount) (bool, error) {
	if m.Type != "bind" {
		return true, nil
	}
	fi, err := os.Stat(m.Source)
	if err != nil {
		return false, fmt.Errorf("bind source %s: %w", m.Source, err)
	}
	return fi.IsDir(), nil
}

// mountpoint resolves target inside root, symbolic links included, and
// creates it as a directory or an empty file.
func mountpoint(root, target string, dir bool) (string, error) {
	p, err := securejoin.SecureJoin(root, target)
	if err != nil {
		return "", fmt.Errorf("resolving mount point %s: %w", target, err)
	}
	if dir {
		err = os.MkdirAll(p, 0o755)
	} else if _, err = os.Stat(p); errors.Is(err, os.ErrNotExist) {
		if err = os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
			var f *os.File
			if f, err = os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
				err = f.Close()
			}
		}
	}
	if err != nil {
		return "", fmt.Errorf("creating mount point %s: %w", target, err)
	}
	return p, nil
}

// PrepareMountpoints creates ahead, inside cfg's root, what setupRootfs
// would create in the union for cfg's own mounts and working directory, as
// init would. On a union mounted a moment ago each creation is a chain of
// FUSE round trips; the shim calls this while init starts, off init's path
// (~2.5 ms for an image without /etc/hosts, /etc/hostname and
// /etc/resolv.conf). A path on another mount (init's /proc, /sys and /dev,
// or a volume mounted above it) is left alone: init creates it there, not
// in the union. Best effort: init creates what is still missing and
// reports what fails.
func PrepareMountpoints(cfg InitConfig) {
	// Resolved inside the root, links followed, as mountpoint does.
	resolve := func(p string) string {
		full, err := securejoin.SecureJoin(cfg.Rootfs, p)
		if err != nil {
			return ""
		}
		return full
	}
	// A path on what init mounts is not the union's: /proc, /sys, /dev and
	// what lies below them, and what lies below a mount of cfg's own.
	var sys, own []string
	for _, p := range []string{"/proc", "/sys", "/dev"} {
		sys = append(sys, resolve(p))
	}
	for _, m := range cfg.Mounts {
		own = append(own, resolve(m.Target))
	}
	below := func(full, top string) bool { return top != "" && strings.HasPrefix(full, top+"/") }
	inUnion := func(p string) bool {
		full := resolve(p)
		if full == "" || full == filepath.Clean(cfg.Rootfs) {
			return false
		}
		for _, top := range sys {
			if full == top || below(full, top) {
				return false
			}
		}
		for _, top := range own {
			if below(full, top) {
				return false
			}
		}
		return true
	}
	for _, m := range cfg.Mounts {
		if !inUnion(m.Target) {
			continue
		}
		if dir, err := needsDir(m); err == nil {
			_, _ = mountpoint(cfg.Rootfs, m.Target, dir)
		}
	}
	if cwd := cfg.Process.Cwd; cwd != "" && inUnion(cwd) {
		_, _ = mountpoint(cfg.Rootfs, cwd, true)
	}
}

// setReadOnly sets the read-only bit alone: a remount would have to repeat
// every flag the kernel locked on mounts from the host's namespace.
func setReadOnly(path string, recursive bool) error {
	var flags uint
	if recursive {
		flags = unix.AT_RECURSIVE
	}
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
	if err := unix.MountSetattr(unix.AT_FDCWD, path, flags, attr); err != nil {
		return fmt.Errorf("making %s read-only: %w", path, err)
	}
	return nil
}

// mountFlags splits mount options into flags and filesystem data.
func mountFlags(opts []string) (flags uintptr, data string, ro bool) {
	var rest []string
	for _, o := range opts {
		switch o {
		case "ro":
			ro = true
		case "rw", "bind", "rbind", "":
		case "nosuid":
			flags |= unix.MS_NOSUID
		case "nodev":
			flags |= unix.MS_NODEV
		case "noexec":
			flags |= unix.MS_NOEXEC
		case "strictatime":
			flags |= unix.MS_STRICTATIME
		case "noatime":
			flags |= unix.MS_NOATIME
		default:
			rest = append(rest, o)
		}
	}
	return flags, strings.Join(rest, ","), ro
}

// pivotRoot makes root the root: pivot_root(".", ".") stacks the old root
// on the new one, and a lazy unmount drops it.
func pivotRoot(root string, readOnly bool) error {
	if err := unix.Chdir(root); err != nil {
		return fmt.Errorf("entering %s: %w", root, err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root to %s: %w", root, err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("entering the new root: %w", err)
	}
	if readOnly {
		return setReadOnly("/", false)
	}
	return nil
}
