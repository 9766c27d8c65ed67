package cli

import (
	"reflect"
	"testing"

	"nook/fusefs"
	"nook/mountd"
)

func TestParseMountOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    []string
		lowers  []string
		upper   string
		xattrs  fusefs.XattrMode
		squash  bool
		vol     bool // volatile: copy-ups not synced
		wantErr bool
	}{
		{name: "fuse-overlayfs line", opts: []string{"lowerdir=/a:/b,upperdir=/u,workdir=/w"}, lowers: []string{"/a", "/b"}, upper: "/u"},
		{name: "podman extras ignored", opts: []string{"lowerdir=/a,upperdir=/u,workdir=/w,fsync=0,noacl,context=\"x\"", "threaded=1"}, lowers: []string{"/a"}, upper: "/u", vol: true},
		{name: "volatile", opts: []string{"lowerdir=/a,upperdir=/u,workdir=/w,volatile"}, lowers: []string{"/a"}, upper: "/u", vol: true},
		{name: "fsync=1 syncs", opts: []string{"lowerdir=/a,upperdir=/u,workdir=/w,fsync=1"}, lowers: []string{"/a"}, upper: "/u"},
		{name: "read-only", opts: []string{"lowerdir=/a:/b"}, lowers: []string{"/a", "/b"}},
		{name: "escaped comma", opts: []string{`lowerdir=/a\,b,upperdir=/u,workdir=/w`}, lowers: []string{"/a,b"}, upper: "/u"},
		{name: "xattrs off", opts: []string{"lowerdir=/a", "xattrs=off"}, lowers: []string{"/a"}, xattrs: fusefs.XattrsOff},
		{name: "noxattrs", opts: []string{"lowerdir=/a,noxattrs=1"}, lowers: []string{"/a"}, xattrs: fusefs.XattrsOff},
		{name: "squash", opts: []string{"lowerdir=/a,squash_to_root"}, lowers: []string{"/a"}, squash: true},
		{name: "no lowerdir", opts: []string{"upperdir=/u,workdir=/w"}, wantErr: true},
		{name: "upper without work", opts: []string{"lowerdir=/a,upperdir=/u"}, wantErr: true},
		{name: "bad xattrs", opts: []string{"lowerdir=/a,xattrs=maybe"}, wantErr: true},
		{name: "uidmapping unsupported", opts: []string{"lowerdir=/a,uidmapping=0:1000:1"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sp, err := parseMountOptions(tc.opts)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			want := mountd.Config{Lowers: tc.lowers, Upper: tc.upper, Xattrs: tc.xattrs,
				SquashToRoot: tc.squash, AllowOther: true, Volatile: tc.vol}
			if tc.upper != "" {
				want.Work = "/w"
			}
			if got := sp.cfg; !reflect.DeepEqual(got, want) {
				t.Errorf("config = %+v, want %+v", got, want)
			}
		})
	}
}

func FuzzParseMountOptions(f *testing.F) {
	f.Add("lowerdir=/a:/b,upperdir=/u,workdir=/w")
	f.Add(`lowerdir=/a\,b\\,xattrs=on,`)
	f.Fuzz(func(t *testing.T, s string) {
		sp, err := parseMountOptions([]string{s})
		if err == nil && len(sp.cfg.Lowers) == 0 {
			t.Errorf("accepted %q without a lower layer", s)
		}
	})
}
