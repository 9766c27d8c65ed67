package rootless

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Where the kernel shows the calling process's own id maps.
const (
	selfUIDMap = "/proc/self/uid_map"
	selfGIDMap = "/proc/self/gid_map"
)

// ownIDMaps is root's map for a new user namespace: the identity over the
// ids its own namespace holds. In the initial namespace that is the whole
// range; root of a user namespace (nook inside a rootless container, or a
// test under `unshare -r`) can map only the ids it has, and asking for
// more fails with EPERM. An unreadable or empty map file reads as the
// initial namespace's.
func ownIDMaps(uidMap, gidMap string) (IDMaps, error) {
	uids, err := ownRanges(uidMap)
	if err != nil {
		return IDMaps{}, err
	}
	gids, err := ownRanges(gidMap)
	if err != nil {
		return IDMaps{}, err
	}
	return IDMaps{UIDs: uids, GIDs: gids, Full: size(uids) > 1 && size(gids) > 1}, nil
}

func ownRanges(file string) ([]IDMap, error) {
	all := []IDMap{{0, 0, maxID}}
	data, err := os.ReadFile(file)
	if file == "" || err != nil {
		return all, nil
	}
	var out []IDMap
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 {
			return nil, fmt.Errorf("reading %s: line %q is not INSIDE OUTSIDE COUNT", file, sc.Text())
		}
		inside, err1 := strconv.ParseUint(f[0], 10, 32)
		count, err2 := strconv.ParseUint(f[2], 10, 32)
		if err1 != nil || err2 != nil || count == 0 {
			return nil, fmt.Errorf("reading %s: line %q is not INSIDE OUTSIDE COUNT", file, sc.Text())
		}
		out = append(out, IDMap{int(inside), int(inside), int(count)})
	}
	if len(out) == 0 {
		return all, nil
	}
	return out, nil
}

func size(m []IDMap) int {
	n := 0
	for _, r := range m {
		n += r.Size
	}
	return n
}
