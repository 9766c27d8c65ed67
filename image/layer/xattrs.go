package layer

import (
	"archive/tar"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// paxXattrPrefix introduces an xattr in PAX records (star's, which GNU tar,
// Docker and archive/tar all use).
const paxXattrPrefix = "SCHILY.xattr."

// xattrs picks the xattrs of hdr a layer keeps, sorted by name. An overlay
// marker refuses the whole layer: a tar that could forge user.overlay.*
// could hide lower files (opaque) or graft others in (redirect).
func (a *applier) xattrs(hdr *tar.Header, name string) ([]xattr, error) {
	var keep []xattr
	for k, v := range hdr.PAXRecords {
		x, ok := strings.CutPrefix(k, paxXattrPrefix)
		if !ok {
			continue
		}
		if isOverlayXattr(x) {
			return nil, fmt.Errorf("%w: entry %q carries overlay xattr %s", ErrUnsafe, name, x)
		}
		if !xattrKept(x) {
			a.skip(name, fmt.Sprintf("xattr %s (only user.* and security.capability are kept)", x))
			continue
		}
		keep = append(keep, xattr{name: x, value: []byte(v)})
	}
	slices.SortFunc(keep, func(a, b xattr) int { return strings.Compare(a.name, b.name) })
	return keep, nil
}

// setXattrs sets xattrs on an open file or directory. Refusals that depend
// on the host (no user xattrs on this filesystem, no right to set file
// capabilities, a value too large) skip that xattr and say so; anything
// else is an error.
func (a *applier) setXattrs(fd int, name string, xattrs []xattr) error {
	for _, x := range xattrs {
		err := unix.Fsetxattr(fd, x.name, x.value, 0)
		switch err {
		case nil:
			a.res.Xattrs = true
		case unix.EPERM, unix.ENOTSUP, unix.E2BIG, unix.ERANGE, unix.ENOSPC, unix.EINVAL:
			a.skip(name, fmt.Sprintf("xattr %s: %v", x.name, err))
		default:
			return fmt.Errorf("setting xattr %s on %q: %w", x.name, name, err)
		}
	}
	return nil
}
