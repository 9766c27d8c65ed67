package image

import (
	"errors"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// staleBlobAge is how long a blob a failed or killed pull left in
// pulls/blobs waits there for a later pull to resume or reuse it.
const staleBlobAge = 24 * time.Hour

// runningPullGrace is how young a pulls/run-* directory must be to count
// as a pull between making it and locking it.
const runningPullGrace = 10 * time.Second

// clearDeadPulls removes the run directories of pulls that no longer run:
// those whose lock nobody holds. A directory younger than a few seconds
// may be a pull between making it and locking it, and is left alone.
func (s *Store) clearDeadPulls() {
	for _, name := range s.listDir("pulls") {
		if !strings.HasPrefix(name, "run-") {
			continue
		}
		dir := path.Join("pulls", name)
		if s.pullRunning(dir) {
			continue
		}
		if err := s.r.RemoveAll(dir); err != nil {
			s.log.Warn("cannot remove what a killed pull left", "path", s.abs(dir), "err", err)
		}
	}
}

// pullRunning reports whether the pull of run directory dir (a name under
// the store's root) is alive (or not ours to judge): its lock is held, or
// it is too young to have one.
func (s *Store) pullRunning(dir string) bool {
	if fi, err := s.r.Lstat(dir); err != nil || !fi.IsDir() || time.Since(fi.ModTime()) < runningPullGrace {
		return err == nil && fi.IsDir()
	}
	f, err := s.r.Open(path.Join(dir, "lock"))
	if err == nil {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		f.Close()
	}
	return err != nil && !errors.Is(err, os.ErrNotExist)
}

// anyPullRunning reports whether some pull is staging in pulls/ now.
func (s *Store) anyPullRunning() bool {
	for _, name := range s.listDir("pulls") {
		if strings.HasPrefix(name, "run-") && s.pullRunning(path.Join("pulls", name)) {
			return true
		}
	}
	return false
}

// clearPullBlobs removes blobs that failed or killed pulls left in
// pulls/blobs, complete or partial, and returns the bytes it freed. With
// all, and no pull running (which might be about to commit one), every
// one goes; otherwise only those untouched for staleBlobAge. A partial
// blob whose fetcher still holds its lock always stays.
func (s *Store) clearPullBlobs(all bool) int64 {
	all = all && !s.anyPullRunning()
	dir := "pulls/blobs/sha256"
	var freed int64
	for _, name := range s.listDir(dir) {
		blob := path.Join(dir, name)
		fi, err := s.r.Lstat(blob)
		if err != nil || (!all && time.Since(fi.ModTime()) < staleBlobAge) {
			continue
		}
		if strings.HasSuffix(name, ".partial") && !s.removeUnlocked(blob) {
			continue
		} else if !strings.HasSuffix(name, ".partial") && s.r.Remove(blob) != nil {
			continue
		}
		freed += fi.Size()
	}
	return freed
}

// removeUnlocked removes a partial blob (a name under the store's root)
// unless its fetcher holds its lock.
func (s *Store) removeUnlocked(name string) bool {
	f, err := s.r.Open(name)
	if err != nil {
		return false
	}
	defer f.Close()
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
		return false
	}
	return s.r.Remove(name) == nil
}
