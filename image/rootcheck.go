package image

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ErrUnsafeRoot marks a store directory that someone else could change
// under nook: owned by another user, writable by others, or holding a
// symbolic link where nook keeps its own files.
var ErrUnsafeRoot = errors.New("unsafe store directory")

// checkRoot creates root when missing and checks it as the runtime
// directory is checked: a directory of the calling user that no one else
// can write to. Another user able to write there could plant
// "containers -> /their/dir" and have nook create the user's files
// wherever they liked. A symbolic link at the top of the store is refused
// too: nook makes none, so one there was planted (perhaps while the
// directory was open to others). Each refusal is one line with the
// remedy.
func checkRoot(root string) error {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return fmt.Errorf("creating store %s: %w", root, err)
	}
	f, err := os.OpenFile(root, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("opening store %s: %w", root, err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("inspecting store %s: %w", root, err)
	}
	uid := os.Geteuid()
	if int(st.Uid) != uid {
		return fmt.Errorf("%w: %s belongs to uid %d, not to you (uid %d): choose a directory of your own with --root", ErrUnsafeRoot, root, st.Uid, uid)
	}
	if mode := st.Mode & 0o7777; mode&0o022 != 0 {
		return fmt.Errorf("%w: %s is writable by others (mode %04o): run chmod go-w %s, or choose another --root", ErrUnsafeRoot, root, mode, root)
	}
	ents, err := f.ReadDir(-1)
	if err != nil {
		return fmt.Errorf("listing store %s: %w", root, err)
	}
	for _, e := range ents {
		if err := checkTopEntry(root, e, uid); err != nil {
			return err
		}
	}
	return nil
}

// checkTopEntry refuses an entry at the top of the store that someone
// else made or can change: a symbolic link (nook makes none), an entry of
// another user, a directory writable by others. Each was planted, perhaps
// while the store was open to others; below them nook makes everything
// itself, in directories only the user can write.
func checkTopEntry(root string, e os.DirEntry, uid int) error {
	p := filepath.Join(root, e.Name())
	if e.Type()&os.ModeSymlink != 0 {
		return fmt.Errorf("%w: %s is a symbolic link, which nook never makes there: remove it, or choose another --root", ErrUnsafeRoot, p)
	}
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return fmt.Errorf("inspecting %s: %w", p, err)
	}
	if int(st.Uid) != uid {
		return fmt.Errorf("%w: %s belongs to uid %d, not to you (uid %d): remove it, or choose another --root", ErrUnsafeRoot, p, st.Uid, uid)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR && st.Mode&0o022 != 0 {
		return fmt.Errorf("%w: %s is writable by others (mode %04o): run chmod go-w %s, or choose another --root", ErrUnsafeRoot, p, st.Mode&0o7777, p)
	}
	return nil
}
