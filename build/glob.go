package build

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// cleanRel makes a Dockerfile path relative to its root: "/a/../b" is "b",
// "/" and "." are "".
func cleanRel(p string) string {
	c := path.Clean("/" + p)
	if strings.HasPrefix(p, "..") || strings.Contains(p, "/../") {
		// Cleaning under "/" would hide a source outside the context.
		if r := path.Clean(p); r == ".." || strings.HasPrefix(r, "../") {
			return r
		}
	}
	return strings.TrimPrefix(c, "/")
}

// glob expands a source pattern in t, component by component.
func glob(t tree, pattern string) ([]string, error) {
	if !hasMeta(pattern) {
		// Through resolve: a symlink among the components is followed
		// only within the tree.
		real, err := t.resolve(pattern)
		if err != nil {
			return nil, nil
		}
		if _, err := t.lstat(real); err != nil {
			return nil, nil
		}
		return []string{pattern}, nil
	}
	cur := []string{""}
	for _, part := range strings.Split(pattern, "/") {
		var next []string
		for _, c := range cur {
			if !hasMeta(part) {
				next = append(next, path.Join(c, part))
				continue
			}
			real, err := t.resolve(c)
			if err != nil {
				continue
			}
			names, err := t.readDir(real)
			if err != nil {
				continue
			}
			for _, n := range names {
				ok, err := path.Match(part, n)
				if err != nil {
					return nil, fmt.Errorf("pattern %q: %w", pattern, err)
				}
				if ok {
					next = append(next, path.Join(c, n))
				}
			}
		}
		cur = next
	}
	return slices.DeleteFunc(cur, func(p string) bool {
		real, err := t.resolve(p)
		if err != nil {
			return true
		}
		_, err = t.lstat(real)
		return err != nil
	}), nil
}

func hasMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }
