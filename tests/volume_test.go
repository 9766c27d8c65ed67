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
		t.Errorf("volume prune without -a (only anonymous volumes, none here) = %q", got)
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

// anonVolumes lists the volumes whose names are Docker's anonymous ones:
// 64 hex digits.
func anonVolumes(t *testing.T, e *env) []string {
	t.Helper()
	var out []string
	for _, n := range strings.Fields(e.ok(nil, "volume", "ls", "-q")) {
		if len(n) == 64 && strings.Trim(n, "0123456789abcdef") == "" {
			out = append(out, n)
		}
	}
	return out
}

// TestAnonymousVolume: -v /path and --mount without a source make a fresh
// volume with a random 64-hex name, listed by volume ls and inspect's
// Mounts, filled from the image; plain rm keeps it, rm -v removes it, and
// so does run --rm, as with Docker.
func TestAnonymousVolume(t *testing.T) {
	e := volumeEnv(t)
	e.ok(nil, "run", "--name", "a", "-v", "/etc", "bb", "sh", "-c", "test -s /etc/passwd && echo mine > /etc/mine")
	vols := anonVolumes(t, e)
	if len(vols) != 1 {
		t.Fatalf("after run -v /etc: anonymous volumes %v, want one", vols)
	}
	got := e.ok(nil, "inspect", "-f", "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}} {{.Source}}{{end}}", "a")
	want := "volume " + vols[0] + " /etc " + filepath.Join(e.store, "volumes", vols[0], "_data") + "\n"
	if got != want {
		t.Errorf("inspect Mounts = %q, want %q", got, want)
	}
	e.ok(nil, "rm", "a")
	if got := anonVolumes(t, e); len(got) != 1 || got[0] != vols[0] {
		t.Errorf("plain rm left volumes %v, want %s kept", got, vols[0])
	}

	e.ok(nil, "create", "--name", "b", "--mount", "type=volume,dst=/d", "bb", "true")
	if got := anonVolumes(t, e); len(got) != 2 {
		t.Errorf("create --mount type=volume,dst=/d: volumes %v, want a second one", got)
	}
	e.ok(nil, "rm", "-v", "b")
	if got := anonVolumes(t, e); len(got) != 1 || got[0] != vols[0] {
		t.Errorf("rm -v left volumes %v, want only %s", got, vols[0])
	}

	if got := e.ok(nil, "run", "--rm", "-v", "/d", "bb", "sh", "-c", "echo x > /d/x && cat /d/x"); got != "x\n" {
		t.Errorf("run --rm -v /d printed %q", got)
	}
	if got := anonVolumes(t, e); len(got) != 1 || got[0] != vols[0] {
		t.Errorf("run --rm left volumes %v, want only %s", got, vols[0])
	}
	// Prune without -a removes the anonymous volume no container uses.
	e.ok(nil, "volume", "create", "named")
	e.ok(nil, "volume", "prune", "-f")
	if got := e.ok(nil, "volume", "ls", "-q"); got != "named\n" {
		t.Errorf("after volume prune: %q, want named only", got)
	}
}

// TestImageVolume: an image's VOLUME gives each container a fresh
// anonymous volume there, filled from the image's content, unless a
// mount of the user's covers it.
func TestImageVolume(t *testing.T) {
	e := volumeEnv(t)
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM bb\nRUN mkdir /vol && echo img > /vol/f\nVOLUME /vol\n"})
	e.ok(nil, "build", "-q", "-t", "volimg", ctx)
	if got := e.ok(nil, "run", "--name", "v1", "volimg", "sh", "-c", "cat /vol/f; echo changed > /vol/f"); got != "img\n" {
		t.Errorf("the volume at /vol holds %q, want the image's img", got)
	}
	vols := anonVolumes(t, e)
	if len(vols) != 1 {
		t.Fatalf("anonymous volumes %v, want one for VOLUME /vol", vols)
	}
	if got := e.ok(nil, "inspect", "-f", "{{range .Mounts}}{{.Name}} {{.Destination}}{{end}} {{json .Config.Volumes}} {{json .HostConfig.Binds}}", "v1"); got != vols[0]+` /vol {"/vol":{}} []`+"\n" {
		t.Errorf("inspect Mounts = %q", got)
	}
	// The change lives in the volume, not in the container's layer.
	if got := e.ok(nil, "diff", "v1"); strings.Contains(got, "/vol") {
		t.Errorf("diff shows the volume's files: %q", got)
	}
	// A second container gets a fresh volume with the image's content.
	if got := e.ok(nil, "run", "--rm", "volimg", "cat", "/vol/f"); got != "img\n" {
		t.Errorf("a second container saw %q, want a fresh volume's img", got)
	}
	// A named volume there replaces the anonymous one.
	e.ok(nil, "run", "--rm", "-v", "mine:/vol", "volimg", "true")
	if got := anonVolumes(t, e); len(got) != 1 {
		t.Errorf("anonymous volumes %v after runs with --rm and a named volume, want v1's only", got)
	}
	e.ok(nil, "rm", "-v", "v1")
	if got := anonVolumes(t, e); len(got) != 0 {
		t.Errorf("rm -v v1 left %v", got)
	}
}
