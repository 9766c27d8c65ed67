package build

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/moby/sys/user"
)

// resolveOwner reads --chown=USER[:GROUP], by name (looked up in the
// stage's /etc/passwd and /etc/group) or number. A user alone takes its
// primary group when named, the same number when numeric, as Docker does.
func resolveOwner(t tree, spec string) (int, int, error) {
	u, g, hasGroup := strings.Cut(spec, ":")
	uid, ugid, err := lookupUser(t, u)
	if err != nil {
		return 0, 0, err
	}
	if !hasGroup {
		return uid, ugid, nil
	}
	gid, err := lookupGroup(t, g)
	return uid, gid, err
}

func lookupUser(t tree, name string) (int, int, error) {
	if n, err := strconv.Atoi(name); err == nil {
		return n, n, nil
	}
	f, err := t.open("etc/passwd")
	if err != nil {
		return 0, 0, fmt.Errorf("--chown=%s: the stage has no /etc/passwd to look the user up in", name)
	}
	defer f.Close()
	users, err := user.ParsePasswdFilter(f, func(u user.User) bool { return u.Name == name })
	if err != nil {
		return 0, 0, fmt.Errorf("reading /etc/passwd: %w", err)
	}
	if len(users) == 0 {
		return 0, 0, fmt.Errorf("--chown=%s: no such user in the stage's /etc/passwd", name)
	}
	return users[0].Uid, users[0].Gid, nil
}

func lookupGroup(t tree, name string) (int, error) {
	if n, err := strconv.Atoi(name); err == nil {
		return n, nil
	}
	f, err := t.open("etc/group")
	if err != nil {
		return 0, fmt.Errorf("--chown=:%s: the stage has no /etc/group to look the group up in", name)
	}
	defer f.Close()
	groups, err := user.ParseGroupFilter(f, func(g user.Group) bool { return g.Name == name })
	if err != nil {
		return 0, fmt.Errorf("reading /etc/group: %w", err)
	}
	if len(groups) == 0 {
		return 0, fmt.Errorf("--chown=:%s: no such group in the stage's /etc/group", name)
	}
	return groups[0].Gid, nil
}
