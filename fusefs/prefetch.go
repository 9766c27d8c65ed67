package fusefs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
)

// ErrNotCached means Prefetch was given a path the kernel has not looked
// up through the mount (or has forgotten), or one that is not a regular
// file: there is no kernel inode to fill.
var ErrNotCached = errors.New("not a regular file the kernel knows")

// prefetchChunk is how much one store notification carries.
const prefetchChunk = 512 << 10

// Prefetch puts up to max bytes of the regular file rel (relative to the
// union's root, slash-separated, every component already looked up
// through the mount and none a symlink) into the kernel's page cache with
// FUSE's store notification: one copy per chunk, no READ round trips. It
// returns how many bytes it stored; a done ctx stops it between chunks.
//
// The kernel takes the stored bytes as the file's data. Call Prefetch only
// while nothing can write the file through the mount (before a container's
// payload starts): a write landing between our read of the layer and the
// store would be overwritten in the cache.
func (s *Server) Prefetch(ctx context.Context, rel string, max int64) (int64, error) {
	in := s.root.EmbeddedInode()
	for _, name := range strings.Split(rel, "/") {
		if name == "" || name == "." {
			continue
		}
		if in = in.GetChild(name); in == nil {
			return 0, fmt.Errorf("prefetching %s: %w", rel, ErrNotCached)
		}
	}
	if in.Mode()&syscall.S_IFMT != syscall.S_IFREG {
		return 0, fmt.Errorf("prefetching %s: %w", rel, ErrNotCached)
	}
	fd, done, errno := asNode(in.Operations()).ioFd(nil, false)
	if errno != 0 {
		return 0, fmt.Errorf("prefetching %s: %w", rel, errno)
	}
	defer done()
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return 0, fmt.Errorf("prefetching %s: %w", rel, err)
	}
	size := min(st.Size, max)
	if size <= 0 {
		return 0, nil
	}
	// Mapped, not read into a buffer: the kernel copies the layer's page
	// cache straight into the notification. A buffer would be fresh heap
	// while init starts beside the shim: each of its pages a fault (~14 µs
	// here) and its allocation a reason for a GC cycle (a 2 KiB file took
	// 1–8 ms to store). A file shrunk meanwhile fails the write (EFAULT):
	// the kernel, not our code, reads the mapping.
	data, err := syscall.Mmap(fd, 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return 0, fmt.Errorf("prefetching %s: %w", rel, err)
	}
	defer syscall.Munmap(data)
	var off int64
	for off < size && ctx.Err() == nil {
		end := min(off+prefetchChunk, size)
		if errno := in.WriteCache(off, data[off:end]); errno != 0 {
			return off, fmt.Errorf("prefetching %s: storing in the kernel's cache: %w", rel, errno)
		}
		off = end
	}
	return off, nil
}
