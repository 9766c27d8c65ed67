package fusefs

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"nook/internal/ownerxattr"
)

// TestRenameKeepsRecordedOwner: a file renamed over one whose owner is
// recorded (single-id mode) takes that record, unless it has its own;
// without a record on the replaced file nothing is added.
func TestRenameKeepsRecordedOwner(t *testing.T) {
	needFuse(t)
	rec := func(u, g uint32) map[string]string {
		return map[string]string{ownerxattr.Name: string(ownerxattr.Encode(u, g))}
	}
	shadow := F("etc/shadow", "old")
	shadow.xattrs = rec(0, 42)
	own := F("etc/own", "old")
	own.xattrs = rec(7, 7)
	l := newLayout(t, []ent{D("etc"), shadow, own, F("etc/plain", "old")})
	defer mountNook(t, l, Options{Xattrs: XattrsOn})()
	m := l.mnt
	for _, c := range []struct {
		dst, src string
		srcRec   []byte
		want     []byte // nil: no record
	}{
		{"etc/shadow", "etc/shadow+", nil, ownerxattr.Encode(0, 42)},
		{"etc/own", "etc/own+", ownerxattr.Encode(9, 9), ownerxattr.Encode(9, 9)},
		{"etc/plain", "etc/plain+", nil, nil},
	} {
		must(t, os.WriteFile(m+"/"+c.src, []byte("new"), 0o640))
		if c.srcRec != nil {
			must(t, unix.Setxattr(m+"/"+c.src, ownerxattr.Name, c.srcRec, 0))
		}
		must(t, os.Rename(m+"/"+c.src, m+"/"+c.dst))
		buf := make([]byte, 64)
		n, err := unix.Getxattr(m+"/"+c.dst, ownerxattr.Name, buf)
		switch {
		case c.want == nil && err != unix.ENODATA:
			t.Errorf("%s: record %x, %v; want none", c.dst, buf[:max(n, 0)], err)
		case c.want != nil && (err != nil || string(buf[:n]) != string(c.want)):
			t.Errorf("%s: record %x, %v; want %x", c.dst, buf[:max(n, 0)], err, c.want)
		}
	}
}
