package container

import (
	"fmt"
	"strings"
)

// CheckEnv refuses a -e value with no variable name ("=x", ""), as
// Docker's command line does: such an entry would reach the process's
// environment as a nameless variable no shell can read or unset.
func CheckEnv(vars []string) error {
	for _, v := range vars {
		if k, _, _ := strings.Cut(v, "="); k == "" {
			return fmt.Errorf("invalid environment variable %q: the name is empty", v)
		}
	}
	return nil
}
