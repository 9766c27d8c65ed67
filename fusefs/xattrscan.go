package fusefs

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// wantXattrs decides whether the mount serves xattrs (see XattrsAuto).
func (u *union) wantXattrs(m XattrMode, known func(string) (bool, bool)) (bool, error) {
	switch m {
	case XattrsOn:
		return true, nil
	case XattrsOff:
		return false, nil
	}
	var scan []lpath
	for i, l := range u.layers {
		if known != nil {
			if has, ok := known(l); ok {
				if has {
					u.log.Debug("layer carries xattrs; serving xattrs", "layer", l)
					return true, nil
				}
				continue
			}
		}
		scan = append(scan, u.layerPath(i, ""))
	}
	found, err := carriesXattrs(scan)
	if found != "" {
		u.log.Debug("layer carries xattrs; serving xattrs", "path", found)
	}
	return found != "", err
}

// scanWorkers is how many directories carriesXattrs reads at once: the
// walk is syscalls on cached metadata, so it scales with the cores.
const scanWorkers = 4

// carriesXattrs returns the path of an entry under one of dirs with an
// xattr other than the overlay markers, or "" if there is none. It stops
// at the first one found.
func carriesXattrs(dirs []lpath) (string, error) {
	s := &xattrScan{todo: append([]lpath(nil), dirs...)}
	s.cond = sync.NewCond(&s.mu)
	var wg sync.WaitGroup
	for range scanWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.work()
		}()
	}
	wg.Wait()
	if s.found != "" {
		return s.found, nil
	}
	return "", s.err
}

// xattrScan is a walk shared by scanWorkers goroutines.
type xattrScan struct {
	mu    sync.Mutex
	cond  *sync.Cond
	todo  []lpath // directories to read
	busy  int     // directories being read
	found string
	err   error
}

// work reads directories until none is left or the walk is over.
func (s *xattrScan) work() {
	buf := make([]byte, 4096)
	for {
		s.mu.Lock()
		for len(s.todo) == 0 && s.busy > 0 && s.found == "" && s.err == nil {
			s.cond.Wait()
		}
		if len(s.todo) == 0 || s.found != "" || s.err != nil {
			s.cond.Broadcast()
			s.mu.Unlock()
			return
		}
		dir := s.todo[len(s.todo)-1]
		s.todo = s.todo[:len(s.todo)-1]
		s.busy++
		s.mu.Unlock()

		subdirs, found, err := scanDir(dir, buf)

		s.mu.Lock()
		s.busy--
		s.todo = append(s.todo, subdirs...)
		if found != "" && s.found == "" {
			s.found = found
		}
		if err != nil && s.err == nil {
			s.err = err
		}
		s.cond.Broadcast()
		s.mu.Unlock()
	}
}

// scanDir checks dir itself and its entries, returning its subdirectories.
func scanDir(dir lpath, buf []byte) (subdirs []lpath, found string, err error) {
	if hasXattrs(dir, buf) {
		return nil, dir.String(), nil
	}
	ents, err := readDir(dir)
	if err != nil {
		return nil, "", fmt.Errorf("scanning layer directory %s for xattrs: %w", dir, err)
	}
	for _, e := range ents {
		p := dir.child(e.Name)
		switch e.Mode & syscall.S_IFMT {
		case syscall.S_IFDIR:
			subdirs = append(subdirs, p)
		case syscall.S_IFREG, 0: // 0: the filesystem gives no type
			if hasXattrs(p, buf) {
				return nil, p.String(), nil
			}
		}
		// user.* cannot be set on symlinks and devices; security.* rarely is.
	}
	return subdirs, "", nil
}

// hasXattrs reports whether p has an xattr other than the overlay markers.
func hasXattrs(p lpath, buf []byte) bool {
	n, err := p.listxattr(buf)
	if errors.Is(err, unix.ERANGE) {
		return true // too many names to be only our markers
	}
	if err != nil || n == 0 {
		return false
	}
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name != "" && !strings.HasPrefix(name, overlayPrefix) {
			return true
		}
	}
	return false
}
