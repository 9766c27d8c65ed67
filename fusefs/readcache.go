package fusefs

import (
	"sync"
	"syscall"
)

// readCache keeps the descriptors of the files read last open. A file read
// in many requests is then opened once, and the host's readahead, which
// lives in the open file, ramps up: with a descriptor per request a cold
// sequential read ran 2-4x slower. Reads of small files gain nothing and
// lose nothing (one open and one close each, as before). The union keeps
// a second one for writes to upper files, which without a handle (no-open
// mode) would open the file for every WRITE.
type readCache struct {
	mu    sync.Mutex
	slots [readCacheSize]readSlot
	tick  uint64
}

// readCacheSize bounds the descriptors held: enough for a few readers of
// big files at once.
const readCacheSize = 16

type readSlot struct {
	n    *node
	fd   int
	refs int32  // requests using fd now
	last uint64 // tick of the last use, for eviction
	gone bool   // dropped while in use: close on the last release
}

// get returns a read-only descriptor of n's top copy, opening it with open
// when none is cached, and the function to call when done with it. open
// also returns the layer it opened, so that a copy-up meanwhile (setLoc
// then drop) cannot leave a stale descriptor cached.
func (c *readCache) get(n *node, open func() (int, int32, syscall.Errno)) (int, func(), syscall.Errno) {
	c.mu.Lock()
	c.tick++
	for i := range c.slots {
		s := &c.slots[i]
		if s.n == n && !s.gone {
			s.refs++
			s.last = c.tick
			c.mu.Unlock()
			return s.fd, func() { c.release(s) }, 0
		}
	}
	c.mu.Unlock()
	fd, layer, errno := open()
	if errno != 0 {
		return -1, nil, errno
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if n.top() != layer {
		return fd, func() { syscall.Close(fd) }, 0
	}
	var victim *readSlot
	for i := range c.slots {
		s := &c.slots[i]
		if s.refs == 0 && (victim == nil || s.last < victim.last) {
			victim = s
		}
	}
	if victim == nil {
		return fd, func() { syscall.Close(fd) }, 0 // every slot busy
	}
	if victim.n != nil {
		syscall.Close(victim.fd)
	}
	*victim = readSlot{n: n, fd: fd, refs: 1, last: c.tick}
	return fd, func() { c.release(victim) }, 0
}

func (c *readCache) release(s *readSlot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s.refs--
	if s.gone && s.refs == 0 {
		syscall.Close(s.fd)
		*s = readSlot{}
	}
}

// drop forgets n's descriptor: n moved to another layer, or is forgotten.
func (c *readCache) drop(n *node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.slots {
		s := &c.slots[i]
		if s.n != n || s.gone {
			continue
		}
		if s.refs > 0 {
			s.gone = true
			continue
		}
		syscall.Close(s.fd)
		*s = readSlot{}
	}
}

// closeAll closes every descriptor; the mount is gone.
func (c *readCache) closeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.slots {
		if s := &c.slots[i]; s.n != nil && s.refs == 0 {
			syscall.Close(s.fd)
			*s = readSlot{}
		}
	}
}
