package image

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// NoSpaceError reports a store that filled up. A full disk surfaces deep
// inside a copy, where it reads as something else: a tee into the blob
// fails the tar reader, which reported "corrupt layer tar: reading data of
// entry ...". This names the cause and the place instead. It matches
// errors.Is(err, unix.ENOSPC) (or EDQUOT for a quota).
type NoSpaceError struct {
	Root  string     // the store
	Free  uint64     // bytes available to the caller when it failed
	Errno unix.Errno // ENOSPC or EDQUOT
}

func (e *NoSpaceError) Error() string {
	return fmt.Sprintf("%v writing to %s (%d bytes free)", e.Errno, e.Root, e.Free)
}

func (e *NoSpaceError) Unwrap() error { return e.Errno }

// ExplainNoSpace turns an error caused by a full store into a
// NoSpaceError; any other error passes unchanged. The store's own
// operations call it; a caller that writes into the store's scratch
// directory itself calls it too.
func (s *Store) ExplainNoSpace(err error) error {
	var ns *NoSpaceError
	if err == nil || errors.As(err, &ns) {
		return err
	}
	errno := unix.ENOSPC
	if !errors.Is(err, unix.ENOSPC) {
		if !errors.Is(err, unix.EDQUOT) {
			return err
		}
		errno = unix.EDQUOT
	}
	s.log.Debug("the store is full", "root", s.root, "err", err)
	var st unix.Statfs_t
	free := uint64(0)
	if f, err := s.r.Open("."); err == nil {
		defer f.Close()
		if unix.Fstatfs(int(f.Fd()), &st) != nil {
			st = unix.Statfs_t{}
		}
	}
	if st.Bsize > 0 {
		free = st.Bavail * uint64(st.Bsize)
	}
	return &NoSpaceError{Root: s.root, Free: free, Errno: errno}
}
