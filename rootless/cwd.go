package rootless

import (
	"errors"
	"fmt"
	"io/fs"

	"golang.org/x/sys/unix"
)

// checkCwd names the working directory when it cannot be entered. The
// fork's chdir would fail with a bare errno that reads as the command's
// own ("starting pwd: no such file or directory") and maps to 127, "not
// found"; Docker's exec gives 126 for any process that cannot start
// (moby's ContainerExecStart), the working directory included.
func checkCwd(root payloadFS, cwd string) error {
	if cwd == "" {
		return nil
	}
	fi, err := root.Stat(cwd)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the bare errno, as chdir's
		}
		return fmt.Errorf("%s: %w", stepCwd(cwd), err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s: %w", stepCwd(cwd), unix.ENOTDIR)
	}
	return nil
}
