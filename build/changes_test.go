package build

import (
	"errors"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestApplyChanges(t *testing.T) {
	cases := []struct {
		changes []string
		check   func(ocispec.ImageConfig) bool
		wantErr bool
	}{
		{[]string{`CMD ["a", "b"]`}, func(c ocispec.ImageConfig) bool { return strings.Join(c.Cmd, ",") == "a,b" }, false},
		{[]string{`CMD echo hi`}, func(c ocispec.ImageConfig) bool { return strings.Join(c.Cmd, ",") == "/bin/sh,-c,echo hi" }, false},
		{[]string{`ENTRYPOINT ["/init"]`}, func(c ocispec.ImageConfig) bool { return c.Entrypoint[0] == "/init" }, false},
		{[]string{`ENV A=1 B="two words"`, `ENV A=3`}, func(c ocispec.ImageConfig) bool {
			return strings.Join(c.Env, ",") == "A=3,B=two words"
		}, false},
		{[]string{`WORKDIR /srv`, `WORKDIR app`}, func(c ocispec.ImageConfig) bool { return c.WorkingDir == "/srv/app" }, false},
		{[]string{`USER 1000:1000`}, func(c ocispec.ImageConfig) bool { return c.User == "1000:1000" }, false},
		{[]string{`LABEL a=b "c d"=e`}, func(c ocispec.ImageConfig) bool { return c.Labels["a"] == "b" && c.Labels["c d"] == "e" }, false},
		{[]string{`EXPOSE 80 53/udp`}, func(c ocispec.ImageConfig) bool {
			_, tcp := c.ExposedPorts["80/tcp"]
			_, udp := c.ExposedPorts["53/udp"]
			return tcp && udp
		}, false},
		{[]string{`STOPSIGNAL SIGINT`}, func(c ocispec.ImageConfig) bool { return c.StopSignal == "SIGINT" }, false},
		{[]string{`VOLUME /data`}, func(c ocispec.ImageConfig) bool { _, ok := c.Volumes["/data"]; return ok }, false},
		{[]string{`RUN rm -rf /`}, nil, true},
		{[]string{`FROM scratch`}, nil, true},
		{[]string{`NOTANINSTRUCTION x`}, nil, true},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.changes, "|"), func(t *testing.T) {
			var cfg ocispec.ImageConfig
			err := ApplyChanges(&cfg, tc.changes)
			if tc.wantErr {
				if !errors.Is(err, ErrBadChange) {
					t.Fatalf("err = %v, want ErrBadChange", err)
				}
				return
			}
			if err != nil || !tc.check(cfg) {
				t.Fatalf("config = %+v, err = %v", cfg, err)
			}
		})
	}
}

func FuzzApplyChanges(f *testing.F) {
	for _, s := range []string{`CMD ["a"]`, "ENV A=1", "LABEL a=b", "EXPOSE 80/tcp", "WORKDIR x", "USER u"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, change string) {
		var cfg ocispec.ImageConfig
		if err := ApplyChanges(&cfg, []string{change}); err != nil && !errors.Is(err, ErrBadChange) {
			t.Fatalf("unexpected error class: %v", err)
		}
	})
}
