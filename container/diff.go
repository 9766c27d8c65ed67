package container

import (
	"fmt"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"nook/internal/overlay"
)

// ChangeKind is what happened to a path, numbered as Docker's API does.
type ChangeKind int

// Kinds of change.
const (
	ChangeModify ChangeKind = iota
	ChangeAdd
	ChangeDelete
)

// String is the letter `docker diff` prints.
func (k ChangeKind) String() string {
	switch k {
	case ChangeAdd:
		return "A"
	case ChangeDelete:
		return "D"
	}
	return "C"
}

// Change is one changed path of a container's filesystem.
type Change struct {
	Path string // absolute, inside the container
	Kind ChangeKind
}

// Lowers returns the container's image layer directories, top first.
func (m *Manager) Lowers(c *Container) ([]string, error) {
	var out []string
	for i := len(c.DiffIDs) - 1; i >= 0; i-- {
		d, err := digest.Parse(c.DiffIDs[i])
		if err != nil {
			return nil, fmt.Errorf("layer %q of %s: %w", c.DiffIDs[i], c.Name, err)
		}
		dir := m.store.LayerDir(d)
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("layer %s of image %s is gone: %w", d, c.Image, err)
		}
		out = append(out, dir)
	}
	return out, nil
}

// Upper is the container's writable layer directory.
func (c *Container) Upper() string { return c.dir + "/upper" }

// MountPoints are the paths nook itself creates in the writable layer to
// mount over: Docker keeps these in a separate "init" layer, so they are
// not the container's changes and diff and commit leave them out.
func (c *Container) MountPoints() []string {
	out := []string{"/proc", "/sys", "/dev", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf"}
	for _, v := range c.Mounts {
		out = append(out, path.Clean("/"+v.Target))
	}
	return out
}

// Changes lists what the container changed in its filesystem, as `docker
// diff` does. Call it inside the user namespace: the writable layer holds
// files of the container's ids.
func (m *Manager) Changes(c *Container) ([]Change, error) {
	lowers, err := m.Lowers(c)
	if err != nil {
		return nil, err
	}
	ch, err := Changes(c.Upper(), lowers, c.MountPoints())
	if err != nil {
		return nil, fmt.Errorf("listing changes of %s: %w", c.Name, err)
	}
	return ch, nil
}

// Changes reads an overlay upper directory alone (the lowers, top first,
// are only asked about single paths) and lists its changes sorted by path
// component by component: a parent before its children, each directory's
// names in byte order. A whiteout is D; a path no visible lower has is A, else C. A
// directory present below is C only when its mode or owner changed or an
// entry directly in it was added or deleted (Docker's rule, minus the
// mtime test: the union and the mount points touch directory times
// without the container changing anything). An opaque directory over a
// lower one is C and everything in it is A. mountPoints that nook created
// (empty, absent below) are left out.
func Changes(upper string, lowers []string, mountPoints []string) ([]Change, error) {
	fd, err := unix.Open(upper, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", upper, err)
	}
	defer unix.Close(fd)
	w := &differ{lowers: lowers, mountPoints: mountPoints, reported: map[string]bool{}}
	if err := w.dir(fd, "/", false); err != nil {
		return nil, err
	}
	// A parent reported for a deleted child comes after its earlier
	// children: sort as the walk visits, a parent first.
	slices.SortFunc(w.out, func(a, b Change) int {
		return strings.Compare(strings.ReplaceAll(a.Path, "/", "\x00"), strings.ReplaceAll(b.Path, "/", "\x00"))
	})
	return w.out, nil
}

type differ struct {
	lowers      []string
	mountPoints []string
	out         []Change
	reported    map[string]bool // directories already listed
}

// dir walks the open upper directory fd at container path p. hidden says
// an ancestor (or p) is opaque: nothing below exists in the lowers.
func (w *differ) dir(fd int, p string, hidden bool) error {
	names, err := readDirNames(fd)
	if err != nil {
		return fmt.Errorf("listing %s: %w", p, err)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := w.entry(fd, n, path.Join(p, n), hidden); err != nil {
			return err
		}
	}
	return nil
}

func (w *differ) entry(pfd int, base, p string, hidden bool) error {
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("inspecting %s: %w", p, err)
	}
	isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	var lower *unix.Stat_t
	if !hidden {
		lower = lookupLower(w.lowers, p)
	}
	kind, report := ChangeAdd, true
	switch {
	case isWhiteout(&st):
		if lower == nil {
			return nil // hides nothing: nothing to report
		}
		kind = ChangeDelete
	case lower == nil:
		if w.isMountPoint(p, &st, pfd, base) {
			return nil
		}
	case isDir && lower.Mode&unix.S_IFMT == unix.S_IFDIR:
		kind = ChangeModify
		report = lower.Mode != st.Mode || lower.Uid != st.Uid || lower.Gid != st.Gid
	default:
		kind = ChangeModify
	}
	if kind != ChangeModify {
		w.parentChanged(path.Dir(p))
	}
	if report {
		w.add(p, kind)
	}
	if !isDir || kind == ChangeDelete {
		return nil
	}
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening %s: %w", p, err)
	}
	defer unix.Close(fd)
	opaque := isOpaque(fd)
	if opaque && lower != nil && !w.reported[p] {
		w.add(p, ChangeModify) // emptied and refilled: its lower content is gone
	}
	return w.dir(fd, p, hidden || opaque || lower == nil)
}

// parentChanged reports dir as changed once, when an entry in it was added
// or deleted, as Docker does even if the directory's own metadata is equal.
func (w *differ) parentChanged(dir string) {
	if dir == "/" || w.reported[dir] {
		return
	}
	w.add(dir, ChangeModify)
}

func (w *differ) add(p string, k ChangeKind) {
	if w.reported[p] {
		return
	}
	w.reported[p] = true
	w.out = append(w.out, Change{Path: p, Kind: k})
}

// isMountPoint reports an empty directory or file that nook created to
// mount over.
func (w *differ) isMountPoint(p string, st *unix.Stat_t, pfd int, base string) bool {
	if !slices.Contains(w.mountPoints, p) {
		return false
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		return st.Size == 0
	case unix.S_IFDIR:
		fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return false
		}
		defer unix.Close(fd)
		names, err := readDirNames(fd)
		return err == nil && len(names) == 0
	}
	return false
}

// lookupLower finds container path p in the lowers (top first) as the
// union would show it, or nil. Only p and its ancestors are looked at, and
// never through a symbolic link: a lower's link must not lead the lookup
// onto the host.
func lookupLower(lowers []string, p string) *unix.Stat_t {
	rel := strings.TrimPrefix(p, "/")
	for _, l := range lowers {
		var st unix.Stat_t
		err := statBeneath(l, rel, &st)
		if err == nil {
			if isWhiteout(&st) {
				return nil
			}
			return &st
		}
		if layerHides(l, rel) {
			return nil
		}
	}
	return nil
}

// beneath is openat2's resolution for a path under a layer directory: no
// symbolic link is followed, none may lead out.
const beneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// openBeneath opens rel under root without following any symbolic link.
func openBeneath(root, rel string, flags int) (int, error) {
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(rfd)
	return unix.Openat2(rfd, rel, &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: beneath})
}

// pathSplit is path.Split with "." for no directory.
func pathSplit(rel string) (dir, base string) {
	dir, base = path.Split(rel)
	if dir == "" {
		dir = "."
	}
	return dir, base
}

// statBeneath lstats rel under root without following any symbolic link.
func statBeneath(root, rel string, st *unix.Stat_t) error {
	dir, base := pathSplit(rel)
	fd, err := openBeneath(root, dir, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Fstatat(fd, base, st, unix.AT_SYMLINK_NOFOLLOW)
}

// layerHides reports whether a layer lacking rel hides the layers below
// at rel: an ancestor that is a whiteout, not a directory, or opaque.
func layerHides(layer, rel string) bool {
	for anc := path.Dir(rel); anc != "." && anc != "/"; anc = path.Dir(anc) {
		var st unix.Stat_t
		if err := statBeneath(layer, anc, &st); err != nil {
			continue // absent here (or under a link, which the ancestor check meets)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return true
		}
		fd, err := openBeneath(layer, anc, unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			continue
		}
		opaque := isOpaque(fd)
		unix.Close(fd)
		if opaque {
			return true
		}
	}
	return false
}

func isWhiteout(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

func isOpaque(fd int) bool {
	v := make([]byte, 8)
	n, err := unix.Fgetxattr(fd, overlay.OpaqueXattr, v)
	return err == nil && string(v[:n]) == overlay.OpaqueValue
}

// readDirNames lists the open directory fd, which stays the caller's.
func readDirNames(fd int) ([]string, error) {
	nfd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(nfd), "dir")
	defer f.Close()
	return f.Readdirnames(-1)
}
