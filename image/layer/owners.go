package layer

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"nook/internal/ownerxattr"
)

// chown gives name the owner from its header. EINVAL means the id is not
// mapped in our user namespace: in a single-id namespace (no subordinate
// ids) every later chown would fail the same way, so owners collapse to
// our own id 0 from then on; with a fuller map only this id is missing and
// the entry keeps our owner, listed in Skipped.
func (a *applier) chown(name string, uid, gid int, set func(uid, gid int) error) error {
	if !a.opts.Chown || a.res.SingleID {
		return nil
	}
	err := set(uid, gid)
	if err == nil {
		return nil
	}
	if err != unix.EINVAL {
		return fmt.Errorf("setting owner of %q to %d:%d: %w", name, uid, gid, err)
	}
	if a.singleIDNamespace() {
		a.res.SingleID = true
		// SingleID tells the caller, who warns once; this says where.
		a.log.Debug("user namespace maps a single id: file owners collapse to root",
			"entry", name, "uid", uid, "gid", gid)
		return nil
	}
	a.skip(name, fmt.Sprintf("owner %d:%d is not mapped in this user namespace, left to root", uid, gid))
	return nil
}

// recordOwner keeps, in single-id mode, the owner an entry could not be
// given in its user.rootlesscontainers attribute (ownerxattr), as the
// faked chowns of a container do, so that Write gives it back.
func (a *applier) recordOwner(fd int, name string, uid, gid int) error {
	if !a.opts.Chown || !a.res.SingleID || uid|gid == 0 {
		return nil
	}
	if err := unix.Fsetxattr(fd, ownerxattr.Name, ownerxattr.Encode(uint32(uid), uint32(gid)), 0); err != nil {
		a.skip(name, fmt.Sprintf("owner %d:%d not recorded: %v", uid, gid, err))
		return nil
	}
	a.res.Xattrs = true // a union over the layer must serve it
	return nil
}

// singleIDNamespace reports whether our uid or gid map holds one id only.
// An unreadable map counts as single: the conservative reading of EINVAL.
func (a *applier) singleIDNamespace() bool {
	for _, f := range []string{"/proc/self/uid_map", "/proc/self/gid_map"} {
		n, err := mappedIDs(f)
		if err != nil {
			a.log.Debug("reading id map", "file", f, "err", err)
			return true
		}
		if n <= 1 {
			return true
		}
	}
	return false
}

// mappedIDs sums the counts of an id map ("inside outside count" lines).
func mappedIDs(file string) (uint64, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var total uint64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 {
			continue
		}
		n, err := strconv.ParseUint(fields[2], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parsing %s: %w", file, err)
		}
		total += n
	}
	return total, sc.Err()
}
