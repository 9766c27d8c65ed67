package rootless

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// checkCwd names the working directory when it cannot be entered. The
// fork's chdir would fail with a bare errno that reads as the command's
// own ("starting pwd: no such file or directory") and maps to 127, "not
// found"; Docker's exec gives 126 for any process that cannot start
// (moby's ContainerExecStart), the working directory included.
func checkCwd(cwd string) error {
	if cwd == "" {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Stat(cwd, &st); err != nil {
		return fmt.Errorf("working directory %s: %w", cwd, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return fmt.Errorf("working directory %s: %w", cwd, unix.ENOTDIR)
	}
	return nil
}
