package container

import (
	"strings"
	"testing"

	"nook/rootless"
)

func TestParseAddHost(t *testing.T) {
	tests := []struct{ in, want, err string }{
		{"db:10.0.0.5", "db:10.0.0.5", ""},
		{"db=10.0.0.5", "db:10.0.0.5", ""},
		{"v6:::1", "v6:::1", ""},
		{"v6=[2001:db8::1]", "v6:2001:db8::1", ""},
		{"gw:host-gateway", "gw:host-gateway", ""},
		{"db", "", "want NAME:IP"},
		{":10.0.0.5", "", "want NAME:IP"},
		{"db:", "", "want NAME:IP"},
		{"db:nohost", "", "no IP address"},
		{"a b:1.2.3.4", "", "want NAME:IP"},
	}
	for _, tt := range tests {
		got, err := ParseAddHost(tt.in)
		if got != tt.want || (err == nil) != (tt.err == "") || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Errorf("ParseAddHost(%q) = %q, %v; want %q, %q", tt.in, got, err, tt.want, tt.err)
		}
	}
	if h, err := resolveExtraHosts([]string{"gw:host-gateway", "db:1.2.3.4"}, "host"); err != nil || hostsLines(h) != "127.0.0.1\tgw\n1.2.3.4\tdb\n" {
		t.Errorf("host-gateway on the host's network: %q, %v", h, err)
	}
	if _, err := resolveExtraHosts([]string{"gw:host-gateway"}, "none"); err == nil {
		t.Error("host-gateway without a network resolved")
	}
}

func TestParseUlimit(t *testing.T) {
	tests := []struct {
		in   string
		want Ulimit
		err  string
	}{
		{"nofile=1024:2048", Ulimit{"nofile", 1024, 2048}, ""},
		{"nproc=100", Ulimit{"nproc", 100, 100}, ""},
		{"core=-1", Ulimit{"core", -1, -1}, ""},
		{"stack=8192:-1", Ulimit{"stack", 8192, -1}, ""},
		{"nofile=2048:1024", Ulimit{}, "exceeds"},
		{"bogus=1", Ulimit{}, "want NAME=SOFT"},
		{"nofile", Ulimit{}, "want NAME=SOFT"},
		{"nofile=x", Ulimit{}, "numbers"},
		{"nofile=-2", Ulimit{}, "numbers"},
	}
	for _, tt := range tests {
		got, err := ParseUlimit(tt.in)
		if got != tt.want || (err == nil) != (tt.err == "") || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Errorf("ParseUlimit(%q) = %+v, %v; want %+v, %q", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestParseShmSize(t *testing.T) {
	for in, want := range map[string]int64{"64m": 64 << 20, "1g": 1 << 30, "512k": 512 << 10, "1000": 1000} {
		if got, err := ParseShmSize(in); got != want || err != nil {
			t.Errorf("ParseShmSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-1m", "lots"} {
		if _, err := ParseShmSize(in); err == nil {
			t.Errorf("ParseShmSize(%q) accepted", in)
		}
	}
}

func FuzzParseAddHost(f *testing.F) {
	for _, s := range []string{"db:10.0.0.5", "v6=[::1]", "gw:host-gateway", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseAddHost(s)
		if err != nil {
			return
		}
		// What it accepts makes one clean hosts line.
		if line := hostsLines([]string{v}); strings.Count(line, "\n") != 1 || strings.ContainsAny(strings.TrimSuffix(line, "\n"), "\n#") {
			t.Errorf("ParseAddHost(%q) = %q makes hosts line %q", s, v, line)
		}
	})
}

func FuzzParseUlimit(f *testing.F) {
	for _, s := range []string{"nofile=1024:2048", "core=-1", "x=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseUlimit(s)
		if err == nil && u.Hard != -1 && (u.Soft == -1 || u.Soft > u.Hard) {
			t.Errorf("ParseUlimit(%q) = %+v: soft above hard", s, u)
		}
	})
}

func TestSubIDHint(t *testing.T) {
	single := rootless.IDMaps{Why: "no entry for user u in /etc/subuid"}
	full := rootless.IDMaps{Full: true}
	for _, tt := range []struct {
		maps rootless.IDMaps
		user string
		hint bool
	}{
		{single, "1000", true}, {single, "nobody:nogroup", true},
		{single, "", false}, {single, "root", false}, {single, "0:0", false},
		{full, "1000", false},
	} {
		h := subIDHint(tt.maps, tt.user)
		if tt.hint != (h != "") {
			t.Errorf("subIDHint(full=%v, %q) = %q", tt.maps.Full, tt.user, h)
		}
		if h != "" && (!strings.Contains(h, single.Why) || !strings.Contains(h, "; remedy: sudo usermod --add-subuids ")) {
			t.Errorf("hint %q lacks the reason or the remedy", h)
		}
	}
}

func TestSecurityOptHostOptions(t *testing.T) {
	for _, tt := range []struct {
		opts []string
		nnp  bool
		err  bool
	}{
		{[]string{"no-new-privileges"}, true, false},
		{[]string{"no-new-privileges:true"}, true, false},
		{[]string{"no-new-privileges=true", "no-new-privileges=false"}, false, false},
		{[]string{"seccomp=unconfined", "apparmor=unconfined", "label=disable"}, false, false},
		{[]string{"seccomp=/x.json"}, false, true},
		{[]string{"no-new-privileges=maybe"}, false, true},
	} {
		var h HostOptions
		_, err := securitySpec(tt.opts, &h)
		if h.NoNewPrivileges != tt.nnp || (err != nil) != tt.err {
			t.Errorf("%v: no-new-privileges %v, %v; want %v (error %v)", tt.opts, h.NoNewPrivileges, err, tt.nnp, tt.err)
		}
	}
}
