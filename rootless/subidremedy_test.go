package rootless

import "testing"

func TestFreeSubIDRange(t *testing.T) {
	tests := []struct {
		name           string
		subuid, subgid string
		want           int
	}{
		{"empty files", "", "", 100000},
		{"after the first user", "alice:100000:65536\n", "alice:100000:65536\n", 165536},
		{"after two users, in any order", "bob:165536:65536\nalice:100000:65536\n", "", 231072},
		{"a gap big enough", "alice:100000:65536\ncarol:300000:65536\n", "", 165536},
		{"a gap too small", "alice:100000:65536\ncarol:200000:65536\n", "", 265536},
		{"only subgid taken", "", "dave:100000:1000\n", 101000},
		{"uid and gid differ", "alice:100000:65536\n", "bob:150000:65536\n", 215536},
		{"range straddling the floor", "erin:50000:60000\n", "", 110000},
		{"nested ranges", "a:100000:200000\nb:120000:10\n", "", 300000},
		{"below the floor ignored", "root:1000:5000\n", "", 100000},
		{"comments and broken lines skipped", "# x:100000:65536\nbad line\nf:x:y\nz:100000:0\n", "", 100000},
		{"by uid as by name", "1001:100000:65536\n", "", 165536},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := freeSubIDRange([]byte(tt.subuid), []byte(tt.subgid)); got != tt.want {
				t.Errorf("freeSubIDRange = %d, want %d", got, tt.want)
			}
		})
	}
}
