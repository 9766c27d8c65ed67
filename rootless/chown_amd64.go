package rootless

import "golang.org/x/sys/unix"

// pathChown says whether nr is chown(2) or lchown(2), which this
// architecture has beside fchownat(2), and which of them follows no link.
func pathChown(nr int32) (ok, nofollow bool) {
	return nr == unix.SYS_CHOWN || nr == unix.SYS_LCHOWN, nr == unix.SYS_LCHOWN
}
