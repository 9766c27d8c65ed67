package rootless

import (
	"errors"
	"slices"
	"testing"
)

// TestCapabilities: Docker's arithmetic of --cap-add and --cap-drop over
// its default set.
func TestCapabilities(t *testing.T) {
	for _, tc := range []struct {
		add, drop  []string
		privileged bool
		want       []string // nil: Docker's default set
		wantLen    int
	}{
		{want: nil, wantLen: len(dockerCaps())},
		{add: []string{"sys_admin"}, wantLen: len(dockerCaps()) + 1},
		{drop: []string{"CAP_CHOWN", "kill"}, wantLen: len(dockerCaps()) - 2},
		{drop: []string{"ALL"}, want: []string{}},
		{drop: []string{"all"}, add: []string{"KILL", "CHOWN"}, want: []string{"CAP_CHOWN", "CAP_KILL"}},
		{add: []string{"ALL"}, drop: []string{"SYS_ADMIN"}, wantLen: len(capNames()) - 1},
		{privileged: true, drop: []string{"ALL"}, wantLen: len(capNames())},
	} {
		got, err := Capabilities(tc.add, tc.drop, tc.privileged)
		if err != nil {
			t.Fatalf("%v %v: %v", tc.add, tc.drop, err)
		}
		if tc.want != nil && !slices.Equal(got, tc.want) || len(got) != max(tc.wantLen, len(tc.want)) {
			t.Errorf("add %v drop %v privileged %v: %v", tc.add, tc.drop, tc.privileged, got)
		}
	}
	if _, err := Capabilities([]string{"NOPE"}, nil, false); !errors.Is(err, ErrCapability) {
		t.Errorf("NOPE: %v", err)
	}
}
