package container

import (
	"errors"
	"strings"
	"testing"
)

func TestParseDevice(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want DeviceMapping
		err  string
	}{
		{in: "/dev/zero", want: DeviceMapping{"/dev/zero", "/dev/zero", "rwm"}},
		{in: "/dev/zero:/dev/z", want: DeviceMapping{"/dev/zero", "/dev/z", "rwm"}},
		{in: "/dev/zero:rw", want: DeviceMapping{"/dev/zero", "/dev/zero", "rw"}},
		{in: "/dev/null:/dev/n:rwm", want: DeviceMapping{"/dev/null", "/dev/n", "rwm"}},
		{in: "/dev/zero:/dev/z:r", err: "device cgroup"},
		{in: "/etc/passwd", err: "not a device"},
		{in: "/dev/zero:z", err: "absolute"},
		{in: "/dev/zero:/a:rw:x", err: "HOST[:CONTAINER[:PERMS]]"},
		{in: "/nonexistent/dev", err: "no such file"},
	} {
		got, err := ParseDevice(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseDevice(%q) = %v, want an error saying %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseDevice(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	if _, err := ParseDevice("/etc/passwd"); !errors.Is(err, ErrDevice) {
		t.Errorf("a file: %v, want ErrDevice", err)
	}
}

func FuzzParseDevice(f *testing.F) {
	for _, s := range []string{"/dev/zero", "/dev/zero:/dev/z:rwm", "/dev/null:r", "a:b:c:d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDevice(s)
		if err == nil && (!strings.HasPrefix(d.PathInContainer, "/") || !strings.Contains(d.CgroupPermissions, "w")) {
			t.Errorf("ParseDevice(%q) = %+v", s, d)
		}
	})
}

func TestParseRestart(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want RestartPolicy
		ok   bool
	}{
		{"no", RestartPolicy{Name: "no"}, true},
		{"always", RestartPolicy{Name: "always"}, true},
		{"unless-stopped", RestartPolicy{Name: "unless-stopped"}, true},
		{"on-failure", RestartPolicy{Name: "on-failure"}, true},
		{"on-failure:5", RestartPolicy{Name: "on-failure", MaximumRetryCount: 5}, true},
		{"on-failure:-1", RestartPolicy{}, false},
		{"always:3", RestartPolicy{}, false},
		{"sometimes", RestartPolicy{}, false},
		{"", RestartPolicy{}, false},
	} {
		got, err := ParseRestart(tt.in)
		if (err == nil) != tt.ok || tt.ok && got != tt.want {
			t.Errorf("ParseRestart(%q) = %+v, %v", tt.in, got, err)
		}
	}
}

func FuzzParseRestart(f *testing.F) {
	for _, s := range []string{"no", "on-failure:3", "always:1", ":"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseRestart(s)
		if err == nil && (p.MaximumRetryCount < 0 || p.MaximumRetryCount > 0 && p.Name != "on-failure") {
			t.Errorf("ParseRestart(%q) = %+v", s, p)
		}
	})
}
