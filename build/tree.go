package build

import (
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"nook/internal/overlay"
)

// A tree is where COPY and ADD read files: the context directory or a
// stage's layers. Paths are clean and relative, "" being the root.
type tree interface {
	lstat(p string) (fs.FileInfo, error)
	readDir(p string) ([]string, error) // names, sorted
	open(p string) (*os.File, error)
	readlink(p string) (string, error)
	// resolve follows the symlinks of a source path the user named,
	// never out of the tree.
	resolve(p string) (string, error)
	keepOwners() bool // files keep their owners (a stage) or become root's (the context)
}

// dirTree is the build context: a directory whose symlinks are copied as
// they are and, when a source names one, followed only within it.
type dirTree struct{ root string }

func (t dirTree) full(p string) string                { return filepath.Join(t.root, p) }
func (t dirTree) lstat(p string) (fs.FileInfo, error) { return os.Lstat(t.full(p)) }
func (t dirTree) open(p string) (*os.File, error)     { return os.Open(t.full(p)) }
func (t dirTree) readlink(p string) (string, error)   { return os.Readlink(t.full(p)) }
func (t dirTree) keepOwners() bool                    { return false }

func (t dirTree) readDir(p string) ([]string, error) {
	ents, err := os.ReadDir(t.full(p))
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	return names, nil
}

func (t dirTree) resolve(p string) (string, error) {
	full, err := securejoin.SecureJoin(t.root, p)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(t.root, full)
	if err != nil || rel == "." {
		return "", err
	}
	return rel, nil
}

// layerTree is a stage's filesystem read from its unpacked layers, top
// first, through the overlay markers they hold: whiteouts hide a name
// below, opaque directories everything below them.
type layerTree struct{ dirs []string }

func (t layerTree) keepOwners() bool                  { return true }
func (t layerTree) resolve(p string) (string, error)  { return p, nil }
func (t layerTree) readlink(p string) (string, error) { return with(t, p, os.Readlink) }
func (t layerTree) open(p string) (*os.File, error)   { return with(t, p, os.Open) }

func (t layerTree) lstat(p string) (fs.FileInfo, error) {
	full, err := t.find(p)
	if err != nil {
		return nil, err
	}
	return os.Lstat(full)
}

func with[T any](t layerTree, p string, f func(string) (T, error)) (T, error) {
	full, err := t.find(p)
	if err != nil {
		var zero T
		return zero, err
	}
	return f(full)
}

// find returns the host path of p in the topmost layer that has it.
func (t layerTree) find(p string) (string, error) {
	if p == "" {
		if len(t.dirs) == 0 {
			return "", fs.ErrNotExist
		}
		return t.dirs[0], nil
	}
	for _, d := range t.dirs {
		hidden, opaque := markers(d, p)
		if hidden {
			return "", fs.ErrNotExist
		}
		full := filepath.Join(d, p)
		fi, err := os.Lstat(full)
		if err == nil {
			if overlay.IsWhiteout(fi) {
				return "", fs.ErrNotExist
			}
			return full, nil
		}
		if opaque {
			return "", fs.ErrNotExist
		}
	}
	return "", fs.ErrNotExist
}

// markers says whether layer dir hides p (a whiteout over one of its
// parents) or stops the search below (an opaque parent).
func markers(dir, p string) (hidden, opaque bool) {
	parts := strings.Split(p, "/")
	cur := dir
	for _, c := range parts[:len(parts)-1] {
		cur = filepath.Join(cur, c)
		fi, err := os.Lstat(cur)
		if err != nil {
			return false, opaque
		}
		if overlay.IsWhiteout(fi) {
			return true, opaque
		}
		if isOpaque(cur) {
			opaque = true
		}
	}
	return false, opaque
}

func isOpaque(dir string) bool {
	buf := make([]byte, 4)
	n, err := unix.Lgetxattr(dir, overlay.OpaqueXattr, buf)
	return err == nil && string(buf[:n]) == overlay.OpaqueValue
}

func (t layerTree) readDir(p string) ([]string, error) {
	seen := map[string]bool{}
	var names []string
	found := false
	for _, d := range t.dirs {
		hidden, _ := markers(d, path.Join(p, "x"))
		if hidden {
			break
		}
		full := filepath.Join(d, p)
		fi, err := os.Lstat(full)
		if err != nil {
			continue
		}
		if !fi.IsDir() {
			break // a whiteout or a file hides the directories below
		}
		found = true
		ents, err := os.ReadDir(full)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if seen[e.Name()] {
				continue
			}
			seen[e.Name()] = true
			if info, err := e.Info(); err == nil && overlay.IsWhiteout(info) {
				continue
			}
			names = append(names, e.Name())
		}
		if isOpaque(full) {
			break
		}
	}
	if !found {
		return nil, &fs.PathError{Op: "readdir", Path: p, Err: fs.ErrNotExist}
	}
	slices.Sort(names)
	return names, nil
}
