package rootless

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

// subIDSpan is how many subordinate ids the remedy proposes: enough for
// every id an image uses (nobody is 65534), as useradd gives by default.
const subIDSpan = 65536

// subIDFloor is where the proposed range may start at the lowest: shadow's
// SUB_UID_MIN and SUB_GID_MIN.
const subIDFloor = 100000

// SubIDRemedy is the command that gives the calling user subordinate uids
// and gids: one range, the same for both, that no line of /etc/subuid or
// /etc/subgid overlaps, whoever's it is.
func SubIDRemedy() string {
	name := currentUserName()
	uids, _ := os.ReadFile(subUIDFile)
	gids, _ := os.ReadFile(subGIDFile)
	start := freeSubIDRange(uids, gids)
	r := fmt.Sprintf("%d-%d", start, start+subIDSpan-1)
	return fmt.Sprintf("sudo usermod --add-subuids %s --add-subgids %s %s", r, r, name)
}

// freeSubIDRange returns the lowest start from subIDFloor on of subIDSpan
// ids that no range of any owner in the given subordinate-id files
// overlaps.
func freeSubIDRange(files ...[]byte) int {
	type span struct{ start, end int } // [start, end)
	var taken []span
	for _, data := range files {
		for line := range bytes.Lines(data) {
			s := strings.TrimSpace(string(line))
			if s == "" || s[0] == '#' {
				continue
			}
			f := strings.Split(s, ":")
			if len(f) != 3 {
				continue
			}
			start, err1 := strconv.ParseUint(f[1], 10, 32)
			count, err2 := strconv.ParseUint(f[2], 10, 32)
			if err1 != nil || err2 != nil || count == 0 {
				continue
			}
			taken = append(taken, span{int(start), int(start + count)})
		}
	}
	slices.SortFunc(taken, func(a, b span) int { return a.start - b.start })
	// In order of start, a range that overlaps the candidate moves it past
	// its end; no range passed over can overlap the moved candidate.
	cand := subIDFloor
	for _, t := range taken {
		if t.start < cand+subIDSpan && t.end > cand {
			cand = t.end
		}
	}
	return cand
}
