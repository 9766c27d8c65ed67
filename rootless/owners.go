package rootless

// The supervisor of the faked chowns (fakeids.go): it records the owner
// a chown meant in the file's user.rootlesscontainers attribute, through
// the container's own root (a union that copies the file up first), and
// answers success.

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"

	"nook/internal/ownerxattr"
)

// linux/seccomp.h's structures.
type seccompData struct {
	Nr   int32
	Arch uint32
	IP   uint64
	Args [6]uint64
}

type seccompNotif struct {
	ID    uint64
	Pid   uint32
	Flags uint32
	Data  seccompData
}

type seccompNotifResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// chownCall is one chown request, its path read from the caller.
type chownCall struct {
	pid      int
	dirfd    int // unix.AT_FDCWD, or the caller's fd for fchown and fchownat
	path     string
	uid, gid uint32 // 1<<32-1: unchanged
	nofollow bool
	empty    bool // fchown, or fchownat with AT_EMPTY_PATH and ""
}

// ServeOwners answers the notifications of listener l until no process
// uses its filter any more, or it is closed or fails; each chown's owner is recorded (or, failing that, logged) and
// the call succeeds unless its path does not resolve.
func ServeOwners(l *os.File, log *slog.Logger) {
	fd := int(l.Fd())
	for {
		// A filter no process uses any more hangs up; a receive would
		// then block for ever (an exec'd process's listener outlives it
		// in the shim otherwise).
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(pfd, -1); err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			log.Debug("seccomp listener done", "err", err)
			return
		}
		if pfd[0].Revents&unix.POLLIN == 0 {
			log.Debug("seccomp listener done", "revents", pfd[0].Revents)
			return
		}
		var n seccompNotif
		if err := ioctlPtr(fd, unix.SECCOMP_IOCTL_NOTIF_RECV, unsafe.Pointer(&n)); err != nil {
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.ENOENT) {
				continue
			}
			log.Debug("seccomp listener done", "err", err)
			return
		}
		resp := seccompNotifResp{ID: n.ID}
		if errno := answerChown(fd, &n, log); errno != 0 {
			resp.Error = -int32(errno)
		}
		// ENOENT: the caller was killed meanwhile.
		_ = ioctlPtr(fd, unix.SECCOMP_IOCTL_NOTIF_SEND, unsafe.Pointer(&resp))
	}
}

func ioctlPtr(fd int, req uint, arg unsafe.Pointer) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(arg))
	if errno != 0 {
		return errno
	}
	return nil
}

// answerChown records one chown and returns the errno the caller gets.
func answerChown(listener int, n *seccompNotif, log *slog.Logger) unix.Errno {
	c, err := readChown(n)
	if err == nil {
		// What was read from the caller's memory is the caller's only
		// if the caller is still the one waiting (not killed, its pid
		// not reused).
		id := n.ID
		err = ioctlPtr(listener, unix.SECCOMP_IOCTL_NOTIF_ID_VALID, unsafe.Pointer(&id))
	}
	if err != nil {
		log.Debug("faked chown not recorded", "pid", n.Pid, "nr", n.Data.Nr, "err", err)
		return 0
	}
	f, err := c.open()
	if err != nil {
		var errno unix.Errno
		if errors.As(err, &errno) && errno != unix.EPERM {
			return errno
		}
		log.Debug("faked chown not recorded", "pid", c.pid, "path", c.path, "err", err)
		return 0
	}
	defer f.Close()
	if err := recordOwner(f, c.uid, c.gid); err != nil {
		log.Debug("faked chown not recorded", "pid", c.pid, "path", c.path, "err", err)
	}
	return 0
}

// readChown decodes the call's arguments.
func readChown(n *seccompNotif) (chownCall, error) {
	a := n.Data.Args
	c := chownCall{pid: int(n.Pid), dirfd: unix.AT_FDCWD}
	var addr uint64
	path, nofollow := pathChown(n.Data.Nr)
	switch {
	case path:
		addr, c.uid, c.gid, c.nofollow = a[0], uint32(a[1]), uint32(a[2]), nofollow
	case n.Data.Nr == unix.SYS_FCHOWN:
		c.dirfd, c.uid, c.gid, c.empty = int(int32(a[0])), uint32(a[1]), uint32(a[2]), true
		return c, nil
	case n.Data.Nr == unix.SYS_FCHOWNAT:
		c.dirfd, addr, c.uid, c.gid = int(int32(a[0])), a[1], uint32(a[2]), uint32(a[3])
		c.nofollow = a[4]&unix.AT_SYMLINK_NOFOLLOW != 0
		c.empty = a[4]&unix.AT_EMPTY_PATH != 0
	default:
		return c, fmt.Errorf("system call %d is no chown", n.Data.Nr)
	}
	p, err := readString(c.pid, addr)
	if err != nil {
		return c, err
	}
	c.path = p
	c.empty = c.empty && p == ""
	return c, nil
}

// readString reads a NUL-terminated path from pid's memory, a page at most
// at a time so that it never reads past the mapping that holds it.
func readString(pid int, addr uint64) (string, error) {
	mem, err := os.Open("/proc/" + strconv.Itoa(pid) + "/mem")
	if err != nil {
		return "", err
	}
	defer mem.Close()
	var out []byte
	for len(out) <= unix.PathMax {
		chunk := 4096 - int(addr%4096)
		buf := make([]byte, chunk)
		n, err := mem.ReadAt(buf, int64(addr))
		if n == 0 && err != nil {
			return "", fmt.Errorf("reading a path from process %d: %w", pid, err)
		}
		if i := bytes.IndexByte(buf[:n], 0); i >= 0 {
			return string(append(out, buf[:i]...)), nil
		}
		out = append(out, buf[:n]...)
		addr += uint64(n)
	}
	return "", unix.ENAMETOOLONG
}

// open opens the call's target, O_PATH, as the caller would resolve it:
// inside the caller's root.
func (c chownCall) open() (*os.File, error) {
	proc := "/proc/" + strconv.Itoa(c.pid)
	if c.empty {
		return os.OpenFile(proc+"/fd/"+strconv.Itoa(c.dirfd), unix.O_PATH, 0)
	}
	p := c.path
	if !path.IsAbs(p) {
		dir := proc + "/cwd"
		if c.dirfd != unix.AT_FDCWD {
			dir = proc + "/fd/" + strconv.Itoa(c.dirfd)
		}
		// The link gives the directory's path inside the caller's root.
		d, err := os.Readlink(dir)
		if err != nil || !path.IsAbs(d) {
			return nil, unix.ENOENT
		}
		p = path.Join(d, p)
	}
	root, err := unix.Open(proc+"/root", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(root)
	flags := uint64(unix.O_PATH | unix.O_CLOEXEC)
	if c.nofollow {
		flags |= unix.O_NOFOLLOW
	}
	fd, err := unix.Openat2(root, p, &unix.OpenHow{Flags: flags, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS})
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), p), nil
}

// recordOwner sets f's recorded owner, keeping the part given as -1; the
// owner 0:0 removes the record. Symbolic links cannot carry user.*
// attributes: their owner is not kept.
func recordOwner(f *os.File, uid, gid uint32) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return nil
	}
	name := "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
	var oldU, oldG uint32
	buf := make([]byte, 64)
	n, err := unix.Getxattr(name, ownerxattr.Name, buf)
	had := err == nil
	if had {
		if oldU, oldG, err = ownerxattr.Decode(buf[:n]); err != nil {
			oldU, oldG = 0, 0
		}
	}
	if uid == 1<<32-1 {
		uid = oldU
	}
	if gid == 1<<32-1 {
		gid = oldG
	}
	if uid == 0 && gid == 0 {
		if had {
			return unix.Removexattr(name, ownerxattr.Name)
		}
		return nil
	}
	return unix.Setxattr(name, ownerxattr.Name, ownerxattr.Encode(uid, gid), 0)
}
