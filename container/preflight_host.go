package container

// Preflight checks 6 to 10: cgroups, the runtime directory, the store's
// file system, fusermount3 and the kernel. See preflight.go.

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	units "github.com/docker/go-units"
	"golang.org/x/sys/unix"

	"nook/internal/overlay"
)

// --- 6. cgroups ---

// cgroupFacts describe the cgroup v2 hierarchy as this process sees it.
type cgroupFacts struct {
	mode        string // "unified", "hybrid", "legacy"
	path        string // the process's v2 cgroup, from /proc/self/cgroup
	writable    bool   // its directory, cgroup.procs and cgroup.subtree_control are writable
	controllers []string
}

// The controllers nook's limits need.
var limitControllers = []string{"cpu", "memory", "pids"}

func checkCgroup(h host) Check {
	var f cgroupFacts
	mount := h.path("/sys/fs/cgroup")
	switch {
	case statfsMagic(mount) == unix.CGROUP2_SUPER_MAGIC:
		f.mode = "unified"
	case statfsMagic(mount+"/unified") == unix.CGROUP2_SUPER_MAGIC:
		f.mode, mount = "hybrid", mount+"/unified"
	default:
		f.mode = "legacy"
	}
	if b, err := os.ReadFile(h.path("/proc/self/cgroup")); err == nil {
		f.path, _ = parseProcCgroup(b)
	}
	if f.mode != "legacy" && f.path != "" {
		dir := filepath.Join(mount, f.path)
		f.writable = unix.Access(dir, unix.W_OK) == nil &&
			unix.Access(dir+"/cgroup.procs", unix.W_OK) == nil &&
			unix.Access(dir+"/cgroup.subtree_control", unix.W_OK) == nil
		if b, err := os.ReadFile(dir + "/cgroup.controllers"); err == nil {
			f.controllers = strings.Fields(string(b))
		}
	}
	return judgeCgroup(f)
}

func statfsMagic(p string) int64 {
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		return 0
	}
	return int64(st.Type)
}

// parseProcCgroup reads /proc/PID/cgroup: "ID:CONTROLLERS:PATH" lines. It
// returns the v2 path (the "0::" line) and the v1 paths by controller.
func parseProcCgroup(b []byte) (v2 string, v1 map[string]string) {
	v1 = map[string]string{}
	for line := range bytes.Lines(b) {
		parts := strings.SplitN(strings.TrimRight(string(line), "\n"), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2 = parts[2]
			continue
		}
		for _, ctrl := range strings.Split(parts[1], ",") {
			if ctrl != "" {
				v1[ctrl] = parts[2]
			}
		}
	}
	return v2, v1
}

func judgeCgroup(f cgroupFacts) Check {
	c := Check{Name: "cgroups", Verdict: VerdictWarn,
		Action: "`nook stats` reads /proc of the container's processes; resource limits " +
			"(--memory, --cpus, --pids-limit) are unavailable and refused with a message"}
	var missing []string
	for _, ctrl := range limitControllers {
		if !slices.Contains(f.controllers, ctrl) {
			missing = append(missing, ctrl)
		}
	}
	switch {
	case f.mode == "legacy":
		c.Detail = "cgroup v1 only: no unified (v2) hierarchy"
		c.Remedy = "boot with systemd.unified_cgroup_hierarchy=1 for cgroup v2, delegated to users by systemd"
	case f.mode == "hybrid":
		c.Detail = "hybrid cgroups: controllers are on v1, the v2 hierarchy (/sys/fs/cgroup/unified) has none"
		c.Remedy = "boot with systemd.unified_cgroup_hierarchy=1 for cgroup v2, delegated to users by systemd"
	case f.path == "":
		c.Detail = "cgroup v2, but /proc/self/cgroup has no v2 entry"
	case !f.writable:
		c.Detail = fmt.Sprintf("cgroup v2, not delegated: your cgroup %s is not writable", f.path)
		c.Remedy = "log in through systemd (user@.service delegates a subtree), or run nook under " +
			"`systemd-run --user --scope -p Delegate=yes`"
	case len(missing) > 0:
		c.Detail = fmt.Sprintf("cgroup v2, delegated (%s), but without the %s controller(s)",
			f.path, strings.Join(missing, ", "))
		c.Action = "`nook stats` and the limits that need " + strings.Join(missing, ", ") +
			" read /proc instead or are refused with a message"
		c.Remedy = "delegate them: a systemd drop-in for user@.service with Delegate=cpu memory pids"
	default:
		return Check{Name: c.Name, Verdict: VerdictOK, Detail: fmt.Sprintf(
			"cgroup v2, delegated: %s is writable, with %s", f.path, strings.Join(f.controllers, " "))}
	}
	return c
}

// --- 7. XDG_RUNTIME_DIR ---

func checkRuntimeDir(h host) Check {
	c := Check{Name: "runtime dir"}
	dir, err := resolveRuntimeDir(h.getenv, h.euid, h.euid)
	var he *HostError
	if errors.As(err, &he) {
		c.Verdict, c.Detail, c.Remedy = VerdictFail, he.Problem, he.Remedy
		c.Action = "no container can start: their sockets live there"
		return c
	}
	c.Verdict, c.Detail = VerdictOK, fmt.Sprintf("nook keeps running containers' sockets in %s", dir)
	if h.getenv("XDG_RUNTIME_DIR") == "" {
		c.Verdict = VerdictInfo
		c.Detail += " (XDG_RUNTIME_DIR is not set)"
	}
	return c
}

// --- 8. the store's file system ---

// storeFacts describe the file system the store lives on.
type storeFacts struct {
	root     string // the store directory
	checked  string // root, or its nearest existing ancestor
	statErr  error
	magic    int64
	free     uint64
	xattrErr error // from setting a user.* xattr on a directory there
}

const minFree = 2 << 30

func checkStore(root string) Check {
	f := storeFacts{root: root, checked: nearestExisting(root)}
	var st unix.Statfs_t
	if f.statErr = unix.Statfs(f.checked, &st); f.statErr == nil {
		f.magic = int64(st.Type)
		f.free = st.Bavail * uint64(st.Bsize)
		f.xattrErr = tryUserXattr(f.checked)
	}
	return judgeStore(f)
}

// nearestExisting is p or its closest ancestor that exists.
func nearestExisting(p string) string {
	p = filepath.Clean(p)
	for {
		if _, err := os.Stat(p); err == nil {
			return p
		}
		parent := filepath.Dir(p)
		if parent == p {
			return p
		}
		p = parent
	}
}

// tryUserXattr sets the opaque marker on a fresh directory in dir, as the
// store does for opaque directories, and removes the directory again.
func tryUserXattr(dir string) error {
	tmp, err := os.MkdirTemp(dir, ".nook-preflight-")
	if err != nil {
		return fmt.Errorf("creating a directory there: %w", err)
	}
	defer os.Remove(tmp)
	if err := unix.Setxattr(tmp, overlay.OpaqueXattr, []byte(overlay.OpaqueValue), 0); err != nil {
		return fmt.Errorf("setting %s: %w", overlay.OpaqueXattr, err)
	}
	return nil
}

const zfsSuperMagic = 0x2fc12fc1 // not in x/sys/unix

// fsNames names the file systems a store is likely to sit on.
var fsNames = map[int64]string{
	unix.EXT4_SUPER_MAGIC: "ext4", unix.XFS_SUPER_MAGIC: "xfs", unix.BTRFS_SUPER_MAGIC: "btrfs",
	unix.TMPFS_MAGIC: "tmpfs", unix.OVERLAYFS_SUPER_MAGIC: "overlay", unix.NFS_SUPER_MAGIC: "nfs",
	unix.FUSE_SUPER_MAGIC: "fuse", unix.F2FS_SUPER_MAGIC: "f2fs", unix.BCACHEFS_SUPER_MAGIC: "bcachefs",
	zfsSuperMagic: "zfs", unix.CIFS_SUPER_MAGIC: "cifs", unix.SMB_SUPER_MAGIC: "smb",
	unix.SMB2_SUPER_MAGIC: "smb2", unix.CEPH_SUPER_MAGIC: "ceph", unix.V9FS_MAGIC: "9p",
	unix.ECRYPTFS_SUPER_MAGIC: "ecryptfs", unix.RAMFS_MAGIC: "ramfs",
}

// networkFS are the file systems whose locks and xattrs nook cannot trust.
var networkFS = []string{"nfs", "cifs", "smb", "smb2", "ceph", "9p"}

func fsName(magic int64) string {
	if n, ok := fsNames[magic]; ok {
		return n
	}
	return fmt.Sprintf("file system 0x%x", magic)
}

func judgeStore(f storeFacts) Check {
	c := Check{Name: "store filesystem", Verdict: VerdictOK}
	where := f.root
	if f.checked != f.root {
		where = fmt.Sprintf("%s (not created yet; checked %s)", f.root, f.checked)
	}
	if f.statErr != nil {
		c.Verdict = VerdictWarn
		c.Detail = fmt.Sprintf("%s: %v", where, f.statErr)
		c.Remedy = "pass --root DIR on a local disk"
		return c
	}
	name := fsName(f.magic)
	c.Detail = fmt.Sprintf("%s on %s, %s free", where, name, units.BytesSize(float64(f.free)))
	var problems, actions []string
	if slices.Contains(networkFS, name) {
		problems = append(problems, name+" is a network file system: its locks and xattrs are unreliable")
		actions = append(actions, "store updates may race and opaque directories may be lost")
	}
	if f.xattrErr != nil {
		problems = append(problems, fmt.Sprintf("user xattrs do not work there (%v)", f.xattrErr))
		actions = append(actions, "images with opaque directories cannot be unpacked there")
	}
	if f.free < minFree {
		problems = append(problems, fmt.Sprintf("only %s free (under 2 GiB)", units.BytesSize(float64(f.free))))
		actions = append(actions, "pulls and container writes may run out of space")
	}
	if len(problems) > 0 {
		c.Verdict = VerdictWarn
		c.Detail += ": " + strings.Join(problems, "; ")
		c.Action = strings.Join(actions, "; ")
		c.Remedy = "pass --root DIR (or set NOOK_ROOT) on a local disk (ext4, xfs, btrfs) with room to spare"
	} else {
		c.Detail += ", user xattrs work"
	}
	return c
}

// --- 9. fusermount3 ---

func checkFusermount(h host) Check {
	var mode fs.FileMode
	var owner int
	p := findTool(h, "fusermount3")
	var st unix.Stat_t
	if p != "" && unix.Stat(p, &st) == nil {
		mode, owner = fs.FileMode(st.Mode&0o7777), int(st.Uid)
	}
	conf, err := os.ReadFile(h.path("/etc/fuse.conf"))
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	return judgeFusermount(p, mode, owner, parseFuseConf(conf), err)
}

// parseFuseConf reports whether /etc/fuse.conf enables user_allow_other,
// which must stand on a line of its own; '#' starts a comment.
func parseFuseConf(b []byte) (userAllowOther bool) {
	for line := range bytes.Lines(b) {
		s, _, _ := strings.Cut(string(line), "#")
		if strings.TrimSpace(s) == "user_allow_other" {
			return true
		}
	}
	return false
}

func judgeFusermount(path string, mode fs.FileMode, owner int, allowOther bool, confErr error) Check {
	c := Check{Name: "fusermount3", Verdict: VerdictOK}
	other := "user_allow_other is not set in /etc/fuse.conf: a `nook mount` is visible to you only, " +
		"-o allow_other is refused"
	if allowOther {
		other = "user_allow_other is set in /etc/fuse.conf"
	}
	if confErr != nil {
		other = fmt.Sprintf("reading /etc/fuse.conf: %v", confErr)
	}
	switch {
	case path == "":
		c.Verdict = VerdictInfo
		c.Detail = "fusermount3 is not installed; " + other
		c.Action = "only `nook mount` as a plain user needs it: containers mount without it"
		c.Remedy = "sudo apt-get install fuse3"
	case mode&fs.FileMode(unix.S_ISUID) == 0 || owner != 0:
		c.Verdict = VerdictInfo
		c.Detail = fmt.Sprintf("%s is not setuid root; %s", path, other)
		c.Action = "only `nook mount` as a plain user needs it: containers mount without it"
		c.Remedy = "sudo apt-get install --reinstall fuse3"
	default:
		c.Detail = fmt.Sprintf("%s (setuid root, for `nook mount`); %s", path, other)
	}
	return c
}

// --- 10. kernel and user ---

func checkKernel(h host) Check {
	var u unix.Utsname
	release := "unknown"
	if unix.Uname(&u) == nil {
		release = unix.ByteSliceToString(u.Release[:])
	}
	return judgeKernel(release, h.euid, h.userName(), h.inUserNS)
}

// kernelVersion parses "6.18.44-fc-v769" into 6, 18.
func kernelVersion(release string) (major, minor int, ok bool) {
	ma, rest, ok1 := strings.Cut(release, ".")
	mi := rest
	if i := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		mi = rest[:i]
	}
	major, err1 := strconv.Atoi(ma)
	minor, err2 := strconv.Atoi(mi)
	return major, minor, ok1 && err1 == nil && err2 == nil
}

func judgeKernel(release string, euid int, name string, inUserNS bool) Check {
	c := Check{Name: "kernel and user", Verdict: VerdictOK,
		Detail: fmt.Sprintf("Linux %s, running as %s (uid %d)", release, name, euid)}
	if major, minor, ok := kernelVersion(release); ok && (major < 4 || major == 4 && minor < 18) {
		c.Verdict = VerdictFail
		c.Detail += ": FUSE mounts in a user namespace need Linux 4.18"
		c.Action = "nook cannot mount a container's file system"
		c.Remedy = "upgrade the kernel to 4.18 or later (5.11+ for kernel overlayfs in a user namespace)"
		return c
	}
	switch {
	case euid == 0 && inUserNS:
		c.Verdict = VerdictInfo
		c.Detail = fmt.Sprintf("Linux %s, running as uid 0 of a user namespace, not the host's root", release)
		c.Action = "nook runs nested, with the ids this namespace maps"
	case euid == 0:
		c.Verdict = VerdictWarn
		c.Action = "nook is meant for unprivileged users; as root it uses the real ids: " +
			"files in images keep their real owners and containers run as real root"
		c.Remedy = "run nook as an ordinary user"
	}
	return c
}
