package cli

import (
	"strings"
	"testing"

	"nook/container"
)

func TestVolumeFilter(t *testing.T) {
	v := container.Volume{Name: "data-1", Driver: "local", Labels: map[string]string{"team": "a", "x": ""}}
	tests := []struct {
		filters []string
		used    bool
		want    bool
		err     string
	}{
		{filters: nil, want: true},
		{filters: []string{"dangling=true"}, want: true},
		{filters: []string{"dangling=true"}, used: true, want: false},
		{filters: []string{"dangling=false"}, used: true, want: true},
		{filters: []string{"name=ta-"}, want: true},
		{filters: []string{"name=nope", "name=data"}, want: true},
		{filters: []string{"name=data", "label=team=b"}, want: false},
		{filters: []string{"label=team=a", "label=x"}, want: true},
		{filters: []string{"label=y"}, want: false},
		{filters: []string{"driver=local"}, want: true},
		{filters: []string{"dangling=maybe"}, err: "true or false"},
		{filters: []string{"size=1"}, err: "unknown key"},
		{filters: []string{"name"}, err: "KEY=VALUE"},
	}
	for _, tc := range tests {
		match, err := volumeFilter(tc.filters)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v: error %v, want %q", tc.filters, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%v: %v", tc.filters, err)
		}
		if got := match(v, tc.used); got != tc.want {
			t.Errorf("%v used=%v: %v, want %v", tc.filters, tc.used, got, tc.want)
		}
	}
}
