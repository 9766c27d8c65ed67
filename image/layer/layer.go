// Package layer converts between OCI/Docker layer tars and directories in
// overlayfs "userxattr" format, the format nook stores unpacked layers and
// container upper directories in: Apply materialises a tar into a
// directory (".wh.NAME" becomes a 0/0 character device, ".wh..wh..opq"
// becomes user.overlay.opaque=y), Write turns such a directory back into a
// deterministic layer tar.
//
// Apply treats its input as hostile. Every path is resolved one component
// at a time from a descriptor of the target directory with O_NOFOLLOW, and
// every change is made with *at system calls relative to the parent's
// descriptor, so no symlink in the tree (nor a race with one) can lead a
// write outside the directory.
package layer

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

var (
	// ErrUnsafe marks a layer refused because an entry would reach outside
	// the target directory or forge overlay metadata.
	ErrUnsafe = errors.New("unsafe layer entry")
	// ErrCorrupt marks input that is not a well-formed tar stream.
	ErrCorrupt = errors.New("corrupt layer tar")
)

// xattrKept reports whether an xattr from a tar (or a directory being
// written) belongs in a layer: user.* (minus overlay's own markers, which
// must never come from content) and file capabilities. trusted.* cannot be
// set unprivileged; security.selinux and ACLs belong to the host.
func xattrKept(name string) bool {
	return (strings.HasPrefix(name, "user.") && !isOverlayXattr(name)) || name == capabilityXattr
}

// isOverlayXattr matches the namespace overlayfs reads its markers from.
func isOverlayXattr(name string) bool { return strings.HasPrefix(name, "user.overlay.") }

const capabilityXattr = "security.capability"

// SyncTree makes everything Apply wrote under dir durable. It uses
// syncfs(2) on dir's filesystem: one call that flushes every dirty inode,
// where an fsync per file would cost a journal commit each (and since
// Linux 5.8 syncfs reports writeback errors). The price is also flushing
// other dirty data on that filesystem, which only makes it slower, never
// wrong.
func SyncTree(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("syncing filesystem of %s: %w", dir, err)
	}
	return nil
}

// startWriteback asks the kernel to start writing length bytes of fd from
// off (0, 0: the whole file) to disk now, without waiting for it: the
// sync before a commit (SyncTree) then finds most of a layer written
// while the rest of it was still arriving, instead of writing it all at
// the end. A failure here changes nothing: the sync reports errors.
func startWriteback(fd int, off, length int64) {
	unix.SyncFileRange(fd, off, length, unix.SYNC_FILE_RANGE_WRITE)
}

// StartWriteback is startWriteback for f, for callers staging other files
// (a pull's blob) that a SyncTree of the same filesystem will sync.
func StartWriteback(f *os.File, off, length int64) { startWriteback(int(f.Fd()), off, length) }

// xattr is one extended attribute of an entry.
type xattr struct {
	name  string
	value []byte
}
