package image

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrUnsafeRoot marks a store directory that someone else could change
// under nook: owned by another user, writable by others, or holding a
// symbolic link where nook keeps its own files.
var ErrUnsafeRoot = errors.New("unsafe store directory")

// openRoot creates root when missing, opens it once and checks it as the
// runtime directory is checked: a directory of the calling user that no
// one else can write to. Another user able to write there could plant
// "containers -> /their/dir" and have nook create the user's files
// wherever they liked. A symbolic link at the top of the store is refused
// too: nook makes none, so one there was planted (perhaps while the
// directory was open to others). Each refusal is one line with the
// remedy.
//
// The checks are made on the opened descriptor, which the store then uses
// for everything: a root swapped for another directory after the check is
// never used. Before the open, though, a parent directory another user
// can write to would let them swap the root in between, so the chain of
// parents is checked as well (see checkParents).
func openRoot(root string) (*os.Root, error) {
	uid := os.Geteuid()
	if err := checkParents(root, uid); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("creating store %s: %w", root, err)
	}
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("opening store %s: %w", root, err)
	}
	if err := checkRoot(r, root, uid); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func checkRoot(r *os.Root, root string, uid int) error {
	f, err := r.Open(".")
	if err != nil {
		return fmt.Errorf("opening store %s: %w", root, err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("inspecting store %s: %w", root, err)
	}
	if int(st.Uid) != uid {
		return fmt.Errorf("%w: %s belongs to uid %d, not to you (uid %d): choose a directory of your own with --root", ErrUnsafeRoot, root, st.Uid, uid)
	}
	if mode := st.Mode & 0o7777; mode&0o022 != 0 {
		return fmt.Errorf("%w: %s is writable by others (mode %04o): run chmod go-w %s, or choose another --root", ErrUnsafeRoot, root, mode, root)
	}
	names, err := f.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("listing store %s: %w", root, err)
	}
	for _, n := range names {
		if err := checkTopEntry(r, root, n, uid); err != nil {
			return err
		}
	}
	// The directories one level further down that every writer uses get
	// the same check, so a link planted there before this open is named
	// at once; one planted later is refused by r when used.
	for _, n := range []string{"blobs/sha256", "pulls/blobs", "pulls/blobs/sha256"} {
		if err := checkTopEntry(r, root, n, uid); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// checkParents refuses a store whose parent directories (of its real
// path) another user could rename or replace entries in: one owned by
// someone other than the user or root, or writable by group or others
// without the sticky bit (/tmp, 1777, is fine: there only an entry's
// owner may rename it). Inside a user namespace (where nook does most of
// its work) the host's root and every other unmapped user show as the
// kernel's overflow uid, which cannot be told apart: such a parent passes
// on its mode alone. For a store not made yet, the check starts at its
// nearest existing ancestor: what is made below it is the user's own.
func checkParents(root string, uid int) error {
	abs, err := filepath.Abs(root)
	if err != nil {
		return fmt.Errorf("resolving store %s: %w", root, err)
	}
	dir := abs
	for _, err := os.Lstat(dir); err != nil && dir != "/"; _, err = os.Lstat(dir) {
		dir = filepath.Dir(dir)
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fmt.Errorf("resolving store %s: %w", root, err)
	}
	if dir == abs {
		real = filepath.Dir(real)
	}
	unmapped := unmappedUID()
	for dir := real; ; dir = filepath.Dir(dir) {
		var st unix.Stat_t
		if err := unix.Lstat(dir, &st); err != nil {
			return fmt.Errorf("inspecting %s, a parent of store %s: %w", dir, root, err)
		}
		if int(st.Uid) != uid && st.Uid != 0 && int(st.Uid) != unmapped {
			return fmt.Errorf("%w: %s, a parent of store %s, belongs to uid %d, who could swap the store: choose another --root", ErrUnsafeRoot, dir, root, st.Uid)
		}
		if st.Mode&0o022 != 0 && st.Mode&unix.S_ISVTX == 0 {
			return fmt.Errorf("%w: %s, a parent of store %s, is writable by others (mode %04o), who could swap the store: run chmod go-w %s, or choose another --root", ErrUnsafeRoot, dir, root, st.Mode&0o7777, dir)
		}
		if dir == "/" {
			return nil
		}
	}
}

// checkTopEntry refuses an entry at the top of the store that someone
// else made or can change: a symbolic link (nook makes none), an entry of
// another user, a directory writable by others. Each was planted, perhaps
// while the store was open to others; below them nook makes everything
// itself, in directories only the user can write.
func checkTopEntry(r *os.Root, root, name string, uid int) error {
	p := filepath.Join(root, name)
	fi, err := r.Lstat(name)
	if err != nil {
		return fmt.Errorf("inspecting %s: %w", p, err)
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("%w: %s is a symbolic link, which nook never makes there: remove it, or choose another --root", ErrUnsafeRoot, p)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != uid {
		return fmt.Errorf("%w: %s belongs to uid %d, not to you (uid %d): remove it, or choose another --root", ErrUnsafeRoot, p, st.Uid, uid)
	}
	if fi.IsDir() && st.Mode&0o022 != 0 {
		return fmt.Errorf("%w: %s is writable by others (mode %04o): run chmod go-w %s, or choose another --root", ErrUnsafeRoot, p, st.Mode&0o7777, p)
	}
	return nil
}

// unmappedUID is the owner the kernel shows, inside a user namespace, for
// a file whose owner is not mapped into it; -1 outside one.
func unmappedUID() int {
	m, err := os.ReadFile("/proc/self/uid_map")
	if err != nil || strings.Join(strings.Fields(string(m)), " ") == "0 0 4294967295" {
		return -1
	}
	b, err := os.ReadFile("/proc/sys/kernel/overflowuid")
	if err != nil {
		return 65534 // the kernel's default
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 65534
	}
	return n
}
