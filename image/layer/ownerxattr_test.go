package layer

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"nook/internal/ownerxattr"
	"nook/internal/testutil"
)

// TestWriteRecordedOwner: a file or directory whose owner was recorded in
// user.rootlesscontainers (single-id mode) is written with that owner,
// and the attribute itself stays out of the tar; a malformed record is
// ignored, leaving the file's own owner.
func TestWriteRecordedOwner(t *testing.T) {
	dir := t.TempDir()
	mk := func(name string, isDir bool, rec []byte) {
		p := filepath.Join(dir, name)
		var err error
		if isDir {
			err = os.Mkdir(p, 0o755)
		} else {
			err = os.WriteFile(p, []byte("x"), 0o755)
			if err == nil {
				err = unix.Chmod(p, 0o4755)
			}
		}
		if err == nil && rec != nil {
			err = unix.Setxattr(p, ownerxattr.Name, rec, 0)
		}
		testutil.Require(t, err == nil, fmt.Sprintf("no user xattrs here: %v", err))
	}
	mk("app", true, ownerxattr.Encode(1000, 1000))
	mk("su", false, ownerxattr.Encode(0, 42))
	mk("bad", false, []byte{0xff})
	hdrs, _ := readAll(t, writeT(t, dir, WriteOptions{}))
	own := os.Getuid()
	want := map[string][3]int{"app/": {1000, 1000, 0o755}, "su": {0, 42, 0o4755}, "bad": {own, os.Getgid(), 0o4755}}
	for _, h := range hdrs {
		w, ok := want[h.Name]
		if !ok {
			continue
		}
		delete(want, h.Name)
		if h.Uid != w[0] || h.Gid != w[1] || h.Mode != int64(w[2]) {
			t.Errorf("%s: %d:%d %o, want %d:%d %o", h.Name, h.Uid, h.Gid, h.Mode, w[0], w[1], w[2])
		}
		if _, ok := h.PAXRecords[paxXattrPrefix+ownerxattr.Name]; ok {
			t.Errorf("%s: the owner record went into the tar as an xattr", h.Name)
		}
	}
	if len(want) != 0 {
		t.Errorf("entries missing: %v", want)
	}
}
