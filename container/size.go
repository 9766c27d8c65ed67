package container

import (
	"io/fs"
	"path/filepath"
)

// Size is what `ps -s` shows of a container: the bytes of its writable
// layer, and those plus its image's (Docker's virtual size). Files of the
// layer in directories the caller cannot read (a subordinate id's, mode
// 0700) are not counted.
func (m *Manager) Size(c *Container) (rw, virtual int64) {
	_ = filepath.WalkDir(filepath.Join(c.dir, "upper"), func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // unreadable: skipped, as the doc says
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				rw += fi.Size()
			}
		}
		return nil
	})
	virtual = rw
	if img, err := m.store.Resolve(c.ImageID); err == nil {
		virtual += img.Size
	}
	return rw, virtual
}
