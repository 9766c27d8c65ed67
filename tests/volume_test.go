package tests

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// volumeEnv is runEnv whose cleanup also removes the volumes, which hold
// files of subordinate ids, after the containers that use them.
func volumeEnv(t *testing.T) *env {
	e := runEnv(t)
	t.Cleanup(func() {
		e.removeContainers()
		e.nook(nil, "volume", "prune", "-a", "-f")
	})
	return e
}

// TestVolumeShared: a named volume written by one container is read by
// the next, through -v NAME:/path and --mount type=volume alike; it is
// made on first use and listed.
func TestVolumeShared(t *testing.T) {
	e := volumeEnv(t)
	e.ok(nil, "run", "--rm", "-v", "shared:/data", "bb", "sh", "-c", "echo kept > /data/f")
	if got := e.ok(nil, "run", "--rm", "--mount", "type=volume,src=shared,dst=/d,readonly", "bb", "cat", "/d/f"); got != "kept\n" {
		t.Errorf("second container read %q, want the first one's kept", got)
	}
	if r := e.nook(nil, "run", "--rm", "--mount", "type=volume,src=shared,dst=/d,readonly", "bb", "touch", "/d/g"); r.code == 0 {
		t.Errorf("a read-only volume took a write: %s", r)
	}
	if got := e.ok(nil, "volume", "ls", "-q"); got != "shared\n" {
		t.Errorf("volume ls -q = %q, want shared", got)
	}
	data := filepath.Join(e.store, "volumes", "shared", "_data")
	if got := e.ok(nil, "volume", "inspect", "-f", "{{.Mountpoint}}", "shared"); got != data+"\n" {
		t.Errorf("Mountpoint = %q, want %s", got, data)
	}
}

// TestVolumePopulated: an empty volume mounted where the image holds
// files gets them, owners kept, on first use; later containers, even of
// another image, see the volume's content, not the image's; nocopy keeps
// a new volume empty.
func TestVolumePopulated(t *testing.T) {
	e := volumeEnv(t)
	e.ok(nil, "run", "--name", "seed", "bb", "sh", "-c", "mkdir /seed && echo from-image > /seed/f && chown 1000:1000 /seed/f && chmod 640 /seed/f")
	e.ok(nil, "commit", "seed", "seeded")
	e.ok(nil, "rm", "seed")
	if got := e.ok(nil, "run", "--rm", "-v", "pop:/seed", "seeded", "sh", "-c", "stat -c '%u %a' /seed/f && cat /seed/f && echo changed > /seed/f"); got != "1000 640\nfrom-image\n" {
		t.Errorf("first use of the volume saw %q, want the image's /seed/f owned by 1000, mode 640", got)
	}
	if got := e.ok(nil, "run", "--rm", "-v", "pop:/seed", "seeded", "cat", "/seed/f"); got != "changed\n" {
		t.Errorf("second use saw %q: the volume was filled again from the image", got)
	}
	if got := e.ok(nil, "run", "--rm", "-v", "pop:/elsewhere", "bb", "cat", "/elsewhere/f"); got != "changed\n" {
		t.Errorf("another image saw %q, want the volume's changed", got)
	}
	if got := e.ok(nil, "run", "--rm", "-v", "bare:/seed:nocopy", "seeded", "ls", "-A", "/seed"); got != "" {
		t.Errorf("a nocopy volume holds %q, want nothing", got)
	}
}

// TestVolumeVerbs: create with labels, inspect in Docker's shape, rm
// refused while a container (even a stopped one) uses the volume, prune
// -a removing only the unused ones.
func TestVolumeVerbs(t *testing.T) {
	e := volumeEnv(t)
	if got := e.ok(nil, "volume", "create", "--label", "team=a", "made"); got != "made\n" {
		t.Errorf("volume create printed %q", got)
	}
	var vols []map[string]any
	if err := json.Unmarshal([]byte(e.ok(nil, "volume", "inspect", "made")), &vols); err != nil || len(vols) != 1 {
		t.Fatalf("volume inspect: %v %v", err, vols)
	}
	v := vols[0]
	for k, want := range map[string]any{"Name": "made", "Driver": "local", "Scope": "local",
		"Mountpoint": filepath.Join(e.store, "volumes", "made", "_data"), "Labels": map[string]any{"team": "a"}} {
		if b1, b2 := jsonOf(v[k]), jsonOf(want); b1 != b2 {
			t.Errorf("inspect %s = %s, want %s", k, b1, b2)
		}
	}
	if s, _ := v["CreatedAt"].(string); s == "" {
		t.Errorf("inspect has no CreatedAt: %v", v)
	}
	if r := e.nook(nil, "volume", "inspect", "nosuch"); r.code != 1 || !strings.Contains(r.stderr, "no such volume") {
		t.Errorf("inspect of a missing volume: %s", r)
	}
	e.ok(nil, "create", "--name", "holder", "-v", "held:/x", "bb", "true")
	e.ok(nil, "run", "--rm", "-v", "loose:/x", "bb", "sh", "-c", "head -c 3000 /dev/zero > /x/z")
	if got := e.ok(nil, "volume", "ls", "--format", "{{.Driver}} {{.Name}}"); got != "local held\nlocal loose\nlocal made\n" {
		t.Errorf("volume ls = %q", got)
	}
	if got := e.ok(nil, "volume", "ls", "-q", "--filter", "dangling=true"); got != "loose\nmade\n" {
		t.Errorf("volume ls --filter dangling=true = %q, want loose and made", got)
	}
	if got := e.ok(nil, "volume", "ls", "-q", "-f", "label=team=a"); got != "made\n" {
		t.Errorf("volume ls -f label=team=a = %q, want made", got)
	}
	if got := e.ok(nil, "ps", "-a", "--filter", "volume=held", "--format", "{{.Names}}"); got != "holder\n" {
		t.Errorf("ps --filter volume=held = %q, want holder", got)
	}
	if got := e.ok(nil, "inspect", "-f", "{{.Name}} {{.Driver}}", "made"); got != "made local\n" {
		t.Errorf("inspect of a volume = %q, want made local", got)
	}
	if r := e.nook(nil, "volume", "rm", "held"); r.code != 1 || !strings.Contains(r.stderr, "in use") {
		t.Errorf("volume rm of a volume in use: %s", r)
	}
	if r := e.nook(nil, "volume", "rm", "-f", "held"); r.code != 1 || !strings.Contains(r.stderr, "in use") {
		t.Errorf("volume rm -f of a volume in use: %s", r)
	}
	if got := e.ok(nil, "volume", "prune", "-f"); got != "Total reclaimed space: 0B\n" {
		t.Errorf("volume prune without -a (only anonymous volumes, which nook has none of) = %q", got)
	}
	got := e.ok(nil, "volume", "prune", "-a", "-f")
	if !strings.Contains(got, "Deleted Volumes:\nloose\nmade\n") || !strings.Contains(got, "Total reclaimed space: 3kB") {
		t.Errorf("volume prune -a -f = %q, want loose and made gone, 3kB", got)
	}
	if got := e.ok(nil, "volume", "ls", "-q"); got != "held\n" {
		t.Errorf("after prune, volume ls -q = %q, want held", got)
	}
	e.ok(nil, "rm", "holder")
	if got := e.ok(nil, "volume", "rm", "held"); got != "held\n" {
		t.Errorf("volume rm printed %q", got)
	}
	if got := e.ok(nil, "volume", "ls", "-q"); got != "" {
		t.Errorf("volume ls -q = %q, want none", got)
	}
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
