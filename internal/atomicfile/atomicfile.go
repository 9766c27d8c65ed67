// Package atomicfile writes files so that a reader sees either the old
// content or the new, never a part: write to a temporary file in the same
// directory, fsync it, rename it over the target, fsync the directory.
package atomicfile

import (
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
)

// WriteFile atomically replaces path with data.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// Write atomically replaces path with what fill writes. The new content
// is written to an unnamed file in path's directory (O_TMPFILE) and named
// only once complete, so a writer killed midway leaves nothing behind.
// Where the filesystem has no unnamed files it is written to a named
// temporary file, ".BASE.tmp-*", locked while in use; a killed writer's
// such file is removed by the next Write to the same path.
func Write(path string, perm os.FileMode, fill func(io.Writer) error) error {
	r, err := os.OpenRoot(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("opening directory of %s: %w", path, err)
	}
	defer r.Close()
	return WriteIn(r, filepath.Base(path), perm, fill)
}

// WriteFileIn atomically replaces name, relative to r, with data.
func WriteFileIn(r *os.Root, name string, data []byte, perm os.FileMode) error {
	return WriteIn(r, name, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteIn is Write for name relative to r: every step goes through r's
// descriptor, so a symbolic link on the way out of r is refused, never
// followed (see os.Root). Errors name the file as r.Name()/name.
func WriteIn(r *os.Root, name string, perm os.FileMode, fill func(io.Writer) error) (err error) {
	full := filepath.Join(r.Name(), name)
	dir, base := path.Split(filepath.ToSlash(name))
	if dir = path.Clean(dir); dir == "" {
		dir = "."
	}
	d, err := r.Open(dir)
	if err != nil {
		return fmt.Errorf("opening directory of %s: %w", full, err)
	}
	defer d.Close()
	clearDebris(r, d, dir, base)
	f, named, err := createTemp(r, dir, base)
	if err != nil {
		return fmt.Errorf("creating temporary file for %s: %w", full, err)
	}
	tmp := named
	defer func() {
		if err != nil {
			_ = f.Close()
			if tmp != "" {
				_ = r.Remove(tmp)
			}
		}
	}()
	if err = fill(f); err != nil {
		return fmt.Errorf("writing %s: %w", full, err)
	}
	if err = f.Chmod(perm); err != nil {
		return fmt.Errorf("setting mode of %s: %w", full, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", full, err)
	}
	if named == "" {
		// linkat cannot replace a name: link the file in beside the
		// target, still locked, and rename it over at once.
		if tmp, err = linkIn(f, d, dir, base); err != nil {
			return fmt.Errorf("naming %s: %w", full, err)
		}
	}
	if err = r.Rename(tmp, name); err != nil {
		return fmt.Errorf("renaming into %s: %w", full, err)
	}
	tmp = ""
	if err = f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", full, err)
	}
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory of %s: %w", full, err)
	}
	return nil
}

// Replace replaces path with data by rename, so that readers never see
// half a file, but without fsync: for files whose loss in a crash costs
// nothing (a container's state, settled again from its lock), where a
// sync would cost every start milliseconds.
func Replace(path string, data []byte, perm os.FileMode) error {
	tmp := fmt.Sprintf("%s.tmp-%d", path, os.Getpid())
	if err := os.WriteFile(tmp, data, perm); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// SyncDir fsyncs a directory so that a rename in it survives a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("opening directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}

// SyncDirIn makes the entries of directory name, relative to r, durable.
func SyncDirIn(r *os.Root, name string) error {
	d, err := r.Open(name)
	if err != nil {
		return fmt.Errorf("opening directory %s: %w", filepath.Join(r.Name(), name), err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", filepath.Join(r.Name(), name), err)
	}
	return nil
}

// ReplaceIn is Replace for name relative to r, reached through r's
// descriptor (see WriteIn).
func ReplaceIn(r *os.Root, name string, data []byte, perm os.FileMode) error {
	tmp := fmt.Sprintf("%s.tmp-%d", name, os.Getpid())
	if err := r.WriteFile(tmp, data, perm); err != nil {
		r.Remove(tmp)
		return fmt.Errorf("writing %s: %w", filepath.Join(r.Name(), name), err)
	}
	if err := r.Rename(tmp, name); err != nil {
		r.Remove(tmp)
		return fmt.Errorf("writing %s: %w", filepath.Join(r.Name(), name), err)
	}
	return nil
}
