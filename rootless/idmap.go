package rootless

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// IDMap maps Size consecutive ids starting at ContainerID inside the user
// namespace to ids starting at HostID outside it: one line of uid_map.
type IDMap struct{ ContainerID, HostID, Size int }

// IDMaps are the uid and gid maps of a user namespace.
type IDMaps struct {
	UIDs, GIDs []IDMap
	// Full is true when the maps hold more than the caller's own ids: the
	// subordinate ids of /etc/subuid and /etc/subgid written by
	// newuidmap/newgidmap, or the whole id range when the caller is root.
	Full bool
	// Why says, when !Full, in one plain sentence why only the caller's own
	// id is mapped.
	Why string
}

// maxID is the largest count a uid_map line can hold; "0 0 4294967295" is
// the map of the initial user namespace.
const maxID = 1<<32 - 1

// Files and helpers CurrentIDMaps consults.
const (
	subUIDFile = "/etc/subuid"
	subGIDFile = "/etc/subgid"
)

// CurrentIDMaps returns the maps for a user namespace of the calling user.
// With entries in /etc/subuid and /etc/subgid (matched by user name or
// numeric uid) and newuidmap/newgidmap installed, container id 0 is the
// caller and ids from 1 on are the subordinate ranges in file order. Root
// gets the identity map of the ids its namespace holds (the whole range
// in the initial one). Anyone else gets the single map
// {0, euid, 1} and Why explains what is missing.
func CurrentIDMaps() (IDMaps, error) {
	uid, gid := os.Geteuid(), os.Getegid()
	if uid == 0 && InUserNS() {
		return nestedIDMaps()
	}
	return idMapsFor(idHost{uid, gid, currentUserName(), subUIDFile, subGIDFile, findIDMapper, selfUIDMap, selfGIDMap})
}

// currentUserName is the caller's login name, else the decimal uid: what
// /etc/subuid's lines name.
func currentUserName() string {
	name := strconv.Itoa(os.Geteuid())
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	return name
}

// idHost is what idMapsFor looks at, apart so tests can feed fixtures.
type idHost struct {
	uid, gid       int
	name           string
	subuid, subgid string                               // file paths
	findMapper     func(tool string) (path, why string) // findIDMapper
	uidMap, gidMap string                               // the caller's own maps, for root
}

func idMapsFor(h idHost) (IDMaps, error) {
	if h.uid == 0 {
		// Root writes any map itself; the identity map keeps on-disk
		// owners equal to the ids seen inside.
		return ownIDMaps(h.uidMap, h.gidMap)
	}
	single := IDMaps{UIDs: []IDMap{{0, h.uid, 1}}, GIDs: []IDMap{{0, h.gid, 1}}}
	uids, why, err := subIDRanges(h.subuid, h.name, h.uid)
	if err != nil || why != "" {
		single.Why = why
		return single, err
	}
	gids, why, err := subIDRanges(h.subgid, h.name, h.uid)
	if err != nil || why != "" {
		single.Why = why
		return single, err
	}
	for _, tool := range []string{"newuidmap", "newgidmap"} {
		if _, why := h.findMapper(tool); why != "" {
			single.Why = why
			return single, nil
		}
	}
	return IDMaps{UIDs: withSubIDs(h.uid, uids), GIDs: withSubIDs(h.gid, gids), Full: true}, nil
}

// nestedIDMaps is the identity map of the ids this user namespace has:
// root of a namespace that maps only some ids (as `nook build` runs, and
// starts its steps' containers from) may map those and no others.
func nestedIDMaps() (IDMaps, error) {
	var m IDMaps
	for _, f := range []struct {
		path string
		out  *[]IDMap
	}{{"/proc/self/uid_map", &m.UIDs}, {"/proc/self/gid_map", &m.GIDs}} {
		data, err := os.ReadFile(f.path)
		if err != nil {
			return m, fmt.Errorf("reading %s: %w", f.path, err)
		}
		for line := range bytes.Lines(data) {
			var inside, outside, count int
			if n, _ := fmt.Sscan(string(line), &inside, &outside, &count); n == 3 {
				*f.out = append(*f.out, IDMap{inside, inside, count})
			}
		}
	}
	m.Full = len(m.UIDs) > 1 || (len(m.UIDs) == 1 && m.UIDs[0].Size > 1)
	if !m.Full {
		m.Why = "this user namespace maps one id only"
	}
	return m, nil
}

// subIDRanges reads a subordinate-id file and returns the ranges of the
// user, or a reason why there are none.
func subIDRanges(path, name string, uid int) ([]subRange, string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Sprintf("%s does not exist", path), nil
	}
	if err != nil {
		return nil, fmt.Sprintf("cannot read %s", path), fmt.Errorf("reading %s: %w", path, err)
	}
	ranges := parseSubIDs(data, name, uid)
	if len(ranges) == 0 {
		return nil, fmt.Sprintf("no entry for user %s in %s", name, path), nil
	}
	return ranges, "", nil
}

// subRange is one usable line of /etc/subuid or /etc/subgid.
type subRange struct{ start, count int }

// parseSubIDs returns, in file order, the ranges of "owner:start:count"
// lines whose owner is name or the decimal uid. Like shadow's own tools it
// skips comments and lines it cannot use rather than failing: a broken line
// for another user must not take this user's ids away. Ranges that would
// push the namespace past the largest id are dropped.
func parseSubIDs(data []byte, name string, uid int) []subRange {
	var out []subRange
	next := 1 // container id of the next range; 0 is the caller
	uidStr := strconv.Itoa(uid)
	for line := range bytes.Lines(data) {
		s := strings.TrimSpace(string(line))
		if s == "" || s[0] == '#' {
			continue
		}
		owner, rest, ok := strings.Cut(s, ":")
		if !ok || (owner != name && owner != uidStr) {
			continue
		}
		startStr, countStr, ok := strings.Cut(rest, ":")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(startStr, 10, 32)
		count, err2 := strconv.ParseUint(countStr, 10, 32)
		if err1 != nil || err2 != nil || count == 0 ||
			start+count > maxID || uint64(next)+count > maxID {
			continue
		}
		out = append(out, subRange{int(start), int(count)})
		next += int(count)
	}
	return out
}

// withSubIDs puts the caller's own id at 0 and the ranges after it.
func withSubIDs(own int, ranges []subRange) []IDMap {
	m := []IDMap{{0, own, 1}}
	next := 1
	for _, r := range ranges {
		m = append(m, IDMap{next, r.start, r.count})
		next += r.count
	}
	return m
}

// findIDMapper locates newuidmap or newgidmap, also where PATH lacks the
// sbin and bin directories, and checks it can act for the user at all.
func findIDMapper(tool string) (path, why string) {
	p, err := exec.LookPath(tool)
	if err != nil {
		for _, dir := range []string{"/usr/bin", "/usr/sbin", "/bin", "/sbin"} {
			if fi, err := os.Stat(dir + "/" + tool); err == nil && fi.Mode().IsRegular() {
				p = dir + "/" + tool
				break
			}
		}
	}
	if p == "" {
		return "", tool + " not found: install uidmap"
	}
	fi, err := os.Stat(p)
	if err != nil {
		return "", fmt.Sprintf("%s: %v", p, err)
	}
	if fi.Mode()&fs.ModeSetuid == 0 {
		// Without setuid it can still work through file capabilities.
		if _, err := unix.Getxattr(p, "security.capability", nil); err != nil {
			return "", fmt.Sprintf("%s is neither setuid nor has file capabilities", p)
		}
	}
	return p, ""
}

// selfWritable reports whether this process may write the maps itself
// (through Go's UidMappings) instead of through newuidmap: root may write
// any map, anyone else only their own single id.
func (m IDMaps) selfWritable() bool {
	if os.Geteuid() == 0 {
		return true
	}
	return len(m.UIDs) == 1 && m.UIDs[0] == IDMap{m.UIDs[0].ContainerID, os.Geteuid(), 1} &&
		len(m.GIDs) == 1 && m.GIDs[0] == IDMap{m.GIDs[0].ContainerID, os.Getegid(), 1}
}

// mapperArgs are newuidmap's arguments after the pid.
func mapperArgs(m []IDMap) []string {
	args := make([]string, 0, 3*len(m))
	for _, e := range m {
		args = append(args, strconv.Itoa(e.ContainerID), strconv.Itoa(e.HostID), strconv.Itoa(e.Size))
	}
	return args
}
