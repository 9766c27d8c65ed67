package container

// The preflight behind `nook info`: one small function per host feature
// nook relies on. Each gathers facts (by trying, where that is cheap) and
// hands them to a pure judge, so the judging is table-tested with made-up
// facts and the gathering with fixture trees under host.root.

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"nook/fusefs"
	"nook/rootless"
)

// Verdict grades one preflight finding.
type Verdict string

const (
	VerdictOK   Verdict = "ok"   // works as nook needs it
	VerdictInfo Verdict = "info" // worth knowing; nothing to fix
	VerdictWarn Verdict = "warn" // nook works, with less: see Action
	VerdictFail Verdict = "fail" // containers cannot run until the remedy is applied
)

// Check is one finding of Preflight, in plain words.
type Check struct {
	Name    string  `json:"name"`
	Verdict Verdict `json:"verdict"`
	Detail  string  `json:"detail"`           // what was found
	Action  string  `json:"action,omitempty"` // what nook does about it
	Remedy  string  `json:"remedy,omitempty"` // what an administrator can do, when needed
}

// PreflightOptions configure Preflight.
type PreflightOptions struct {
	// StoreRoot is the image store's directory (required). It need not
	// exist: its nearest existing ancestor is checked then, and nothing is
	// created.
	StoreRoot string
	// ProbeTimeout bounds the namespace probes together; 0 means 5 s.
	ProbeTimeout time.Duration
	Logger       *slog.Logger // nil discards
}

// StageProbeUserNS names the stage of ProbeUserNS; main dispatches it
// (cli.Stages).
const StageProbeUserNS = "probe-userns"

// Preflight checks this host for running rootless containers. It always
// returns the same checks in the same order, each with a verdict; a check
// that cannot tell says so in its own verdict rather than as an error. The
// probes that start namespaces run concurrently with the rest.
func Preflight(ctx context.Context, opts PreflightOptions) []Check {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	timeout := opts.ProbeTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	h := realHost()
	maps, mapsErr := rootless.CurrentIDMaps()
	// Checks 2 and 5 share one namespace start.
	probe := sync.OnceValue(func() nsProbes { return probeUserNS(ctx, h, maps) })
	checks := []func() Check{
		func() Check { return checkFUSE(h) },
		func() Check { return judgeUserNS(readUserNSSysctls(h), h.euid, maps, probe()) },
		func() Check { return checkIDMappers(h) },
		func() Check { return judgeSubIDs(maps, mapsErr, h.euid, rootless.SubIDRemedy()) },
		func() Check { return judgeOverlay(probe()) },
		func() Check { return checkCgroup(h) },
		func() Check { return checkRuntimeDir(h) },
		func() Check { return checkStore(opts.StoreRoot) },
		func() Check { return checkFusermount(h) },
		func() Check { return checkKernel(h) },
	}
	out := make([]Check, len(checks))
	var wg sync.WaitGroup
	for i, check := range checks {
		wg.Go(func() {
			start := time.Now()
			out[i] = check()
			log.Debug("preflight check", "name", out[i].Name, "verdict", out[i].Verdict,
				"took", time.Since(start))
		})
	}
	wg.Wait()
	return out
}

// host is where the checks look. Tests point root at a fixture tree.
type host struct {
	root     string // prefix of every absolute host path read; "" is the real host
	euid     int
	egid     int
	inUserNS bool // uid 0 of a user namespace, not the host's root
	getenv   func(string) string
}

func realHost() host {
	return host{euid: os.Geteuid(), egid: os.Getegid(), inUserNS: rootless.InUserNS(), getenv: os.Getenv}
}

func (h host) path(p string) string { return h.root + p }

// userName is the user's login name, else the decimal uid.
func (h host) userName() string {
	id := strconv.Itoa(h.euid)
	if u, err := user.LookupId(id); err == nil {
		return u.Username
	}
	return id
}

// singleIDNote says what a single-id map means for the user.
const singleIDNote = "single-id mode: one id is mapped, so every file inside containers belongs to root; " +
	"chown, the id setters (setuid, setgroups, …) and mknod of devices are faked by a seccomp filter so that " +
	"package managers work, and the owners chown meant are kept in each file's user.rootlesscontainers " +
	"attribute and written into images (commit, save, push); run --force=none lets those calls fail instead"

// --- 1. /dev/fuse ---

func checkFUSE(h host) Check {
	f, err := os.OpenFile(h.path("/dev/fuse"), os.O_RDWR, 0)
	if err == nil {
		f.Close()
	}
	var mode fs.FileMode
	if fi, serr := os.Stat(h.path("/dev/fuse")); serr == nil {
		mode = fi.Mode().Perm()
	}
	return judgeFUSE(err, mode, h.euid)
}

func judgeFUSE(openErr error, mode fs.FileMode, euid int) Check {
	c := Check{Name: "/dev/fuse", Verdict: VerdictFail,
		Action: "nook cannot mount a container's file system: no container can run"}
	switch {
	case openErr == nil:
		return Check{Name: c.Name, Verdict: VerdictOK,
			Detail: fmt.Sprintf("/dev/fuse opens read-write (mode %04o)", mode)}
	case errors.Is(openErr, fs.ErrNotExist):
		c.Detail = "/dev/fuse does not exist: the fuse kernel module is not loaded"
		c.Remedy = fusefs.NoFuseRemedy(openErr)
	case errors.Is(openErr, fs.ErrPermission):
		c.Detail = fmt.Sprintf("/dev/fuse is mode %04o: uid %d cannot open it read-write", mode, euid)
		c.Remedy = fusefs.NoFuseRemedy(openErr)
	default:
		c.Detail = fmt.Sprintf("opening /dev/fuse: %v", openErr)
	}
	return c
}

// --- 2. user namespaces ---

// userNSSysctls are the knobs that can forbid unprivileged user
// namespaces; -1 means the file does not exist on this kernel.
type userNSSysctls struct {
	max      int // user.max_user_namespaces
	clone    int // kernel.unprivileged_userns_clone (Debian's patch)
	apparmor int // kernel.apparmor_restrict_unprivileged_userns (Ubuntu 23.10+)
}

func readUserNSSysctls(h host) userNSSysctls {
	return userNSSysctls{
		max:      readSysctlInt(h, "user.max_user_namespaces"),
		clone:    readSysctlInt(h, "kernel.unprivileged_userns_clone"),
		apparmor: readSysctlInt(h, "kernel.apparmor_restrict_unprivileged_userns"),
	}
}

// readSysctlInt reads a numeric sysctl by its dotted name; -1 when the file
// is missing or does not hold a number.
func readSysctlInt(h host, name string) int {
	b, err := os.ReadFile(h.path("/proc/sys/" + strings.ReplaceAll(name, ".", "/")))
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return -1
	}
	return n
}

// nsProbes are the results of starting a user namespace (ProbeUserNS):
// with the maps nook would use, and, when those were the full maps and
// failed, with the user's single id (nil otherwise).
type nsProbes struct {
	main   probeResult
	single *probeResult
}

func probeUserNS(ctx context.Context, h host, maps rootless.IDMaps) nsProbes {
	var p nsProbes
	args := []string{os.TempDir()}
	p.main = runProbe(ctx, StageProbeUserNS, args, maps)
	if p.main.err != nil && maps.Full && h.euid != 0 {
		s := runProbe(ctx, StageProbeUserNS, args, singleMap(h))
		p.single = &s
	}
	return p
}

func singleMap(h host) rootless.IDMaps {
	return rootless.IDMaps{
		UIDs: []rootless.IDMap{{ContainerID: 0, HostID: h.euid, Size: 1}},
		GIDs: []rootless.IDMap{{ContainerID: 0, HostID: h.egid, Size: 1}},
	}
}

func judgeUserNS(s userNSSysctls, euid int, maps rootless.IDMaps, p nsProbes) Check {
	c := Check{Name: "user namespaces"}
	if p.main.err == nil {
		c.Verdict = VerdictOK
		how := "single-id map"
		switch {
		case euid == 0:
			how = "identity map, as root"
		case maps.Full:
			how = "full map written by newuidmap/newgidmap"
		}
		ids, _ := probeFacts(p.main.out)
		unit := "uids"
		if ids == "1" {
			unit = "uid"
		}
		c.Detail = fmt.Sprintf("a user namespace starts: %s %s mapped (%s)", ids, unit, how)
		return c
	}
	c.Verdict = VerdictFail
	c.Action = "nook cannot run containers: every container lives in a user namespace"
	switch {
	case s.max == 0:
		c.Detail = "user.max_user_namespaces is 0: user namespaces are disabled"
		c.Remedy = "sudo sysctl -w user.max_user_namespaces=15000 (and set it in /etc/sysctl.d/ to keep it)"
	case s.clone == 0:
		c.Detail = "kernel.unprivileged_userns_clone is 0: unprivileged user namespaces are disabled"
		c.Remedy = "sudo sysctl -w kernel.unprivileged_userns_clone=1 (and set it in /etc/sysctl.d/)"
	case s.apparmor == 1:
		c.Detail = "kernel.apparmor_restrict_unprivileged_userns is 1: AppArmor denies user namespaces to unconfined programs"
		c.Remedy = "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0, or give nook an " +
			"AppArmor profile that allows `userns,` (as /etc/apparmor.d/ does for other tools)"
	case p.single != nil && p.single.err == nil:
		c.Verdict = VerdictWarn
		c.Detail = fmt.Sprintf("user namespaces work, but not with the full id map: %v", p.main.err)
		c.Action = singleIDNote
		c.Remedy = "check newuidmap/newgidmap and your lines in /etc/subuid and /etc/subgid"
	default:
		c.Detail = fmt.Sprintf("starting a user namespace failed: %v", p.main.err)
	}
	return c
}

// --- 3. newuidmap / newgidmap ---

// mapperFacts describe one id-mapping helper as found on disk.
type mapperFacts struct {
	tool  string // "newuidmap" or "newgidmap"
	path  string // "" when not found
	mode  fs.FileMode
	owner int    // file owner's uid
	caps  []byte // security.capability xattr; nil when absent
	cap   int    // the capability the tool needs: CAP_SETUID or CAP_SETGID
}

const (
	capSetgid = 6
	capSetuid = 7
)

// findTool finds a helper on PATH or in the usual bin directories, which a
// user's PATH may lack.
func findTool(h host, tool string) string {
	if h.root == "" {
		for _, dir := range filepath.SplitList(h.getenv("PATH")) {
			if isFile(filepath.Join(dir, tool)) {
				return filepath.Join(dir, tool)
			}
		}
	}
	for _, dir := range []string{"/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"} {
		if isFile(h.path(dir + "/" + tool)) {
			return h.path(dir + "/" + tool)
		}
	}
	return ""
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

func readMapper(h host, tool string, capNeeded int) mapperFacts {
	m := mapperFacts{tool: tool, path: findTool(h, tool), cap: capNeeded}
	if m.path == "" {
		return m
	}
	var st unix.Stat_t
	if err := unix.Stat(m.path, &st); err == nil {
		m.mode = fs.FileMode(st.Mode & 0o7777)
		m.owner = int(st.Uid)
	}
	buf := make([]byte, 64)
	if n, err := unix.Getxattr(m.path, "security.capability", buf); err == nil {
		m.caps = buf[:n]
	}
	return m
}

func checkIDMappers(h host) Check {
	return judgeIDMappers(h.euid, []mapperFacts{
		readMapper(h, "newuidmap", capSetuid),
		readMapper(h, "newgidmap", capSetgid),
	})
}

func judgeIDMappers(euid int, tools []mapperFacts) Check {
	c := Check{Name: "newuidmap", Verdict: VerdictOK}
	var found, bad []string
	for _, m := range tools {
		switch how := mapperPrivilege(m); {
		case m.path == "":
			bad = append(bad, m.tool+" is not installed")
		case how == "":
			bad = append(bad, fmt.Sprintf("%s is neither setuid root nor has cap_%s", m.path, capName(m.cap)))
		default:
			found = append(found, fmt.Sprintf("%s (%s)", m.path, how))
		}
	}
	switch {
	case euid == 0:
		c.Verdict = VerdictInfo
		c.Detail = "running as root: nook writes the id maps itself and does not need newuidmap/newgidmap"
	case len(bad) == 0:
		c.Detail = strings.Join(found, ", ")
	default:
		c.Verdict = VerdictWarn
		c.Detail = strings.Join(bad, "; ")
		c.Action = singleIDNote
		c.Remedy = "sudo apt-get install uidmap (or your distribution's shadow-utils/uidmap package)"
	}
	return c
}

// mapperPrivilege says how a helper gets its privilege, "" when it has none.
func mapperPrivilege(m mapperFacts) string {
	if m.path == "" {
		return ""
	}
	if m.mode&fs.FileMode(unix.S_ISUID) != 0 && m.owner == 0 {
		return "setuid root"
	}
	if permitted, err := parseFileCaps(m.caps); err == nil && permitted&(1<<m.cap) != 0 {
		return "file capability cap_" + capName(m.cap)
	}
	return ""
}

func capName(c int) string {
	if c == capSetgid {
		return "setgid"
	}
	return "setuid"
}

// parseFileCaps returns the permitted set of a security.capability xattr
// (struct vfs_cap_data, little endian, revisions 1 to 3).
func parseFileCaps(b []byte) (uint64, error) {
	const (
		revMask = 0xFF000000
		rev1    = 0x01000000
		rev2    = 0x02000000
		rev3    = 0x03000000
	)
	le32 := func(i int) uint64 {
		return uint64(b[i]) | uint64(b[i+1])<<8 | uint64(b[i+2])<<16 | uint64(b[i+3])<<24
	}
	if len(b) < 4 {
		return 0, fmt.Errorf("capability xattr of %d bytes", len(b))
	}
	switch rev := le32(0) & revMask; {
	case rev == rev1 && len(b) == 12:
		return le32(4), nil
	case rev == rev2 && len(b) == 20, rev == rev3 && len(b) == 24:
		return le32(4) | le32(12)<<32, nil
	default:
		return 0, fmt.Errorf("capability xattr revision %#x of %d bytes", rev>>24, len(b))
	}
}

// --- 4. subordinate ids ---

// judgeSubIDs judges the user's id maps; remedy is rootless.SubIDRemedy's.
func judgeSubIDs(maps rootless.IDMaps, err error, euid int, remedy string) Check {
	c := Check{Name: "subordinate ids"}
	switch {
	case euid == 0:
		c.Verdict = VerdictInfo
		c.Detail = "running as root: containers use the host's real ids (identity map)"
		return c
	case err != nil:
		c.Verdict = VerdictWarn
		c.Detail = fmt.Sprintf("reading subordinate ids: %v", err)
		c.Action, c.Remedy = singleIDNote, remedy
		return c
	case !maps.Full:
		c.Verdict = VerdictWarn
		c.Detail = "no subordinate ids: " + maps.Why
		c.Action, c.Remedy = singleIDNote, remedy
		return c
	}
	uids, gids := subCount(maps.UIDs), subCount(maps.GIDs)
	c.Detail = fmt.Sprintf("%d subordinate uids (%s) and %d gids (%s): the full map is used, "+
		"and chown and the id setters work for real (nothing is faked)",
		uids, hostRanges(maps.UIDs), gids, hostRanges(maps.GIDs))
	c.Verdict = VerdictOK
	if n := min(uids, gids); n < 65536 {
		c.Verdict = VerdictWarn
		c.Action = fmt.Sprintf("containers have ids 0 to %d: images with files or users above %d "+
			"(nobody is 65534) fail", n, n)
		c.Remedy = remedy
	}
	return c
}

// subCount counts the ids of a map beyond container id 0, the user's own.
func subCount(m []rootless.IDMap) int {
	n := 0
	for _, e := range m {
		if e.ContainerID != 0 {
			n += e.Size
		}
	}
	return n
}

func hostRanges(m []rootless.IDMap) string {
	var r []string
	for _, e := range m {
		if e.ContainerID != 0 {
			r = append(r, fmt.Sprintf("%d-%d", e.HostID, e.HostID+e.Size-1))
		}
	}
	return strings.Join(r, ", ")
}

// --- 5. kernel overlayfs ---

func judgeOverlay(p nsProbes) Check {
	c := Check{Name: "kernel overlayfs", Verdict: VerdictInfo,
		Detail: "not tried: no user namespace could be started"}
	var out *string
	switch {
	case p.main.err == nil:
		out = &p.main.out
	case p.single != nil && p.single.err == nil:
		out = &p.single.out
	}
	if out != nil {
		_, err := probeFacts(*out)
		if err == nil {
			c.Verdict = VerdictOK
			c.Detail = "mounts in a user namespace with userxattr; whiteouts and opaque directories are honoured"
			return c
		}
		c.Detail = fmt.Sprintf("not usable in a user namespace: %v", err)
	}
	c.Action = "nook does not need it: its union is FUSE; kernel overlayfs (Linux 5.11+) is only the reference and a fallback"
	return c
}
