package fusefs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// NoFuseRemedy is what makes /dev/fuse usable when opening it failed with
// err, as `nook info` and a failing `run` both say; "" when none is known.
func NoFuseRemedy(err error) string {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "sudo modprobe fuse (and list fuse in /etc/modules-load.d/ to keep it)"
	case errors.Is(err, fs.ErrPermission):
		return "sudo chmod 0666 /dev/fuse (the distribution default)"
	}
	return ""
}

// checkDevice opens the FUSE device at path, failing with ErrNoFuse and
// the remedy when it cannot.
func checkDevice(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		err = fmt.Errorf("opening %s: %w: %w", path, ErrNoFuse, err)
		if r := NoFuseRemedy(err); r != "" {
			err = fmt.Errorf("%w; remedy: %s", err, r)
		}
		return err
	}
	return f.Close()
}
