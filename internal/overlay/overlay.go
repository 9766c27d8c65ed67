// Package overlay names the on-disk markers of Linux overlayfs in its
// "userxattr" flavour, which is the format nook stores unpacked layers and
// container upper directories in, and the OCI layer-tar markers they are
// converted from and to. Kernel overlayfs (mounted with -o userxattr) and
// nook's FUSE union read the same directories because both honour these.
package overlay

import (
	"io/fs"
	"syscall"
)

const (
	// OpaqueXattr marks a directory whose lower-layer contents are hidden.
	OpaqueXattr = "user.overlay.opaque"
	// OpaqueValue is the value OpaqueXattr holds on an opaque directory.
	OpaqueValue = "y"
	// RedirectXattr names the lower path a renamed directory came from.
	RedirectXattr = "user.overlay.redirect"

	// WhiteoutPrefix marks a deleted name in an OCI layer tar: ".wh.NAME".
	WhiteoutPrefix = ".wh."
	// OpaqueMarker in an OCI layer tar makes its directory opaque.
	OpaqueMarker = ".wh..wh..opq"
)

// IsWhiteout reports whether an entry is an overlay whiteout: a character
// device with device number 0/0.
func IsWhiteout(fi fs.FileInfo) bool {
	if fi.Mode()&fs.ModeCharDevice == 0 || fi.Mode()&fs.ModeDevice == 0 {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Rdev == 0
}

// IsWhiteoutStat is IsWhiteout for a raw stat result.
func IsWhiteoutStat(st *syscall.Stat_t) bool {
	return st.Mode&syscall.S_IFMT == syscall.S_IFCHR && st.Rdev == 0
}
