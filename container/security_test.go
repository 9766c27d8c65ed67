package container

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nook/internal/seccomp"
)

func TestSeccompSpec(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	bad := filepath.Join(dir, "bad.json")
	badRule := filepath.Join(dir, "badrule.json")
	for name, body := range map[string]string{
		good:    "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\",\n  \"syscalls\": [{\"names\": [\"mkdir\"], \"action\": \"SCMP_ACT_ERRNO\"}]\n}\n",
		bad:     `{"defaultAction": "SCMP_ACT_ALLOW"`,
		badRule: `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_SOMETIMES"}]}`,
	} {
		if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		opts []string
		want string // the spec, or the error's text
		err  error
	}{
		{nil, "", nil},
		{[]string{"seccomp=unconfined"}, "unconfined", nil},
		{[]string{"seccomp:unconfined"}, "unconfined", nil},
		{[]string{"seccomp=" + good}, `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}`, nil},
		{[]string{"seccomp=" + good, "seccomp=unconfined"}, "unconfined", nil},
		{[]string{"seccomp=" + bad}, bad, seccomp.ErrProfile},
		{[]string{"seccomp=" + badRule}, "SCMP_ACT_SOMETIMES", seccomp.ErrProfile},
		{[]string{"seccomp=" + filepath.Join(dir, "absent.json")}, "absent.json", os.ErrNotExist},
		{[]string{"apparmor=unconfined"}, "", nil},
		{[]string{"apparmor=nook"}, "apparmor=nook", ErrSecurityOpt},
		{[]string{"seccomp="}, "seccomp=", ErrSecurityOpt},
	}
	for _, tt := range tests {
		got, err := securitySpec(tt.opts, &HostOptions{})
		if tt.err != nil {
			if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("%q: error %v, want one line with %q (%v)", tt.opts, err, tt.want, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q = %q, %v; want %q", tt.opts, got, err, tt.want)
		}
	}
}
