package fusefs

import (
	"context"
	"syscall"

	gofs "github.com/hanwen/go-fuse/v2/fs"
	"golang.org/x/sys/unix"

	"nook/internal/overlay"
	"nook/internal/ownerxattr"
)

var _ = (gofs.NodeRenamer)((*node)(nil))

// Rename works for every entry, directories that exist below included: such
// a directory is first made self-contained in the upper layer (its lower
// entries copied up, the copy opaque), so `mv` never sees EXDEV.
func (n *node) Rename(ctx context.Context, name string, newParent gofs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	u := n.un()
	if !u.writable {
		return syscall.EROFS
	}
	if flags&^(unix.RENAME_NOREPLACE|unix.RENAME_EXCHANGE) != 0 {
		return syscall.EINVAL
	}
	np := asNode(newParent)
	u.mu.Lock()
	defer u.mu.Unlock()
	src, errno := n.prepareMove(name)
	if errno != 0 {
		return errno
	}
	if errno := np.copyUpLocked(); errno != 0 {
		return errno
	}
	srcRel, dstRel := childPath(n.path(), name), childPath(np.path(), newName)
	dl, derr := u.resolve(np.merged(), dstRel)
	if derr != 0 && derr != syscall.ENOENT {
		return derr
	}
	exists := derr == 0
	if flags&unix.RENAME_EXCHANGE != 0 {
		if !exists {
			return syscall.ENOENT
		}
		return n.exchange(src, srcRel, np, newName, dstRel)
	}
	if exists && flags&unix.RENAME_NOREPLACE != 0 {
		return syscall.EEXIST
	}
	if exists && dl.st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
		if ents, errno := u.list(dl.dirs, dstRel, false); errno != 0 {
			return errno
		} else if len(ents) > 0 {
			return syscall.ENOTEMPTY
		}
		if dl.layer == 0 {
			// Only whiteouts remain in it; rename(2) wants it empty.
			if err := u.upperPath(dstRel).emptyDir(); err != nil {
				return u.hostErr("rename", dstRel, err)
			}
		}
	}
	if exists && dl.st.Mode&syscall.S_IFMT == syscall.S_IFREG && src.StableAttr().Mode == syscall.S_IFREG {
		u.keepRecordedOwner(u.layerPath(int(dl.layer), dstRel), u.upperPath(srcRel))
	}
	if exists && dl.st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		np.orphanChild(newName, &dl)
	}
	srcBelow, _ := u.lowerHas(n.merged(), srcRel)
	_, dstBelow := u.lowerHas(np.merged(), dstRel)
	srcP, dstP := u.upperPath(srcRel), u.upperPath(dstRel)
	if src.IsDir() && dstBelow {
		// Lower entries under the new name must stay hidden.
		if err := srcP.setxattr(overlay.OpaqueXattr, []byte(overlay.OpaqueValue), 0); err != nil {
			return u.hostErr("marking opaque", srcRel, err)
		}
	}
	if src.IsDir() && u.upperWhiteout(dstRel) {
		// A directory cannot replace the whiteout; swap them instead and
		// keep the whiteout at the old name if it hides something there.
		if err := srcP.rename(dstP, unix.RENAME_EXCHANGE); err != nil {
			return u.hostErr("rename", srcRel, err)
		}
		if !srcBelow {
			if err := srcP.unlink(); err != nil {
				return u.hostErr("rename", srcRel, err)
			}
		}
	} else if err := u.renameUpper(srcP, dstP, srcBelow); err != nil {
		return u.hostErr("rename", srcRel, err)
	}
	if exists && dl.layer == 0 && dl.st.Nlink <= 1 && dl.st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
		u.forgetOrigin(&dl.st)
	}
	return 0
}

// keepRecordedOwner gives a file that replaces another the owner recorded
// on the one it replaces (ownerxattr, single-id mode), unless it records
// one of its own. A program that replaces a file atomically (useradd's
// /etc/shadow, sed -i) copies the old file's owner as stat shows it, and
// inside a single-id container stat cannot show a recorded owner: this is
// what it meant to copy.
func (u *union) keepRecordedOwner(old, repl lpath) {
	buf := make([]byte, 64)
	if _, err := repl.getxattr(ownerxattr.Name, buf); err == nil {
		return
	}
	n, err := old.getxattr(ownerxattr.Name, buf)
	if err != nil {
		return
	}
	if err := repl.setxattr(ownerxattr.Name, buf[:n], 0); err != nil {
		u.log.Debug("recorded owner not carried over", "file", repl.String(), "err", err)
	}
}

// prepareMove puts the entry name of n wholly in the upper layer.
func (n *node) prepareMove(name string) (*node, syscall.Errno) {
	ci := n.GetChild(name)
	if ci == nil {
		return nil, syscall.ENOENT // the kernel renames only what it looked up
	}
	src := ci.Operations().(*node)
	if src.IsDir() {
		return src, src.makeSelfContained()
	}
	return src, src.copyUpLocked()
}

// renameUpper renames within the upper layer, leaving a whiteout at the old
// name in the same step when something below must stay hidden.
func (u *union) renameUpper(srcP, dstP lpath, whiteout bool) error {
	if !whiteout {
		return srcP.rename(dstP, 0)
	}
	err := srcP.rename(dstP, unix.RENAME_WHITEOUT)
	if err != syscall.EINVAL && err != syscall.EPERM {
		return err
	}
	// No RENAME_WHITEOUT here (old kernel, or the filesystem lacks it).
	if err := srcP.rename(dstP, 0); err != nil {
		return err
	}
	return srcP.mknod(syscall.S_IFCHR, 0)
}

// exchange swaps two existing entries (RENAME_EXCHANGE).
func (n *node) exchange(src *node, srcRel string, np *node, newName, dstRel string) syscall.Errno {
	u := n.un()
	dst, errno := np.prepareMove(newName)
	if errno != 0 {
		return errno
	}
	for _, e := range []*node{src, dst} {
		if e.IsDir() {
			p := u.upperPath(e.path())
			if err := p.setxattr(overlay.OpaqueXattr, []byte(overlay.OpaqueValue), 0); err != nil {
				return u.hostErr("marking opaque", p, err)
			}
		}
	}
	if err := u.upperPath(srcRel).rename(u.upperPath(dstRel), unix.RENAME_EXCHANGE); err != nil {
		return u.hostErr("exchange", srcRel, err)
	}
	return 0
}
