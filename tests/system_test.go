package tests

import (
	"encoding/json"
	"strings"
	"testing"
)

// dfFormat prints system df's rows in a form the test compares whole.
const dfFormat = "{{.Type}}|{{.TotalCount}}|{{.Active}}|{{.Size}}|{{.Reclaimable}}"

// TestSystemDfPrune: system df counts what images, ps -a and volume ls
// show, with the bytes of writable layers and volumes; system prune
// removes stopped containers, --volumes -a the volumes they freed, and
// keeps what a running container uses.
func TestSystemDfPrune(t *testing.T) {
	e := volumeEnv(t)
	imgSize := strings.TrimSpace(e.ok(nil, "images", "--format", "{{.Size}}"))
	e.ok(nil, "run", "-d", "--name", "sleeper", "bb", "sleep", "1000")
	e.ok(nil, "run", "--name", "writer", "bb", "sh", "-c", "head -c 5000 /dev/zero > /z")
	e.ok(nil, "run", "--name", "user", "-v", "vv:/x", "bb", "sh", "-c", "head -c 2000 /dev/zero > /x/z")
	want := "Images|1|1|" + imgSize + "|0B (0%)\n" +
		"Containers|3|1|5kB|5kB (100%)\n" +
		"Local Volumes|1|1|2kB|0B (0%)\n" +
		"Build Cache|0|0|0B|0B\n"
	if got := e.ok(nil, "system", "df", "--format", dfFormat); got != want {
		t.Errorf("system df:\n%s\nwant:\n%s", got, want)
	}
	if got := e.ok(nil, "system", "df"); !strings.HasPrefix(got, "TYPE ") || !strings.Contains(got, "RECLAIMABLE\n") {
		t.Errorf("system df table:\n%s", got)
	}
	got := e.ok(nil, "system", "prune", "-f")
	if !strings.Contains(got, "Deleted Containers:") || strings.Contains(got, "Deleted Volumes") {
		t.Errorf("system prune -f:\n%s", got)
	}
	if got := e.ok(nil, "ps", "-a", "--format", "{{.Names}}"); got != "sleeper\n" {
		t.Errorf("after system prune, ps -a = %q, want sleeper", got)
	}
	if got := e.ok(nil, "volume", "ls", "-q"); got != "vv\n" {
		t.Errorf("system prune without --volumes removed volumes: %q", got)
	}
	if got := e.ok(nil, "system", "prune", "-a", "-f", "--volumes"); !strings.Contains(got, "Deleted Volumes:\nvv\n") {
		t.Errorf("system prune -a --volumes:\n%s", got)
	}
	want = "Images|1|1|" + imgSize + "|0B (0%)\n" +
		"Containers|1|1|0B|0B\n" +
		"Local Volumes|0|0|0B|0B\n" +
		"Build Cache|0|0|0B|0B\n"
	if got := e.ok(nil, "system", "df", "--format", dfFormat); got != want {
		t.Errorf("system df after prune:\n%s\nwant:\n%s", got, want)
	}
}

// TestSystemInfo: system info is info.
func TestSystemInfo(t *testing.T) {
	e := runEnv(t)
	var a, b map[string]any
	if err := json.Unmarshal([]byte(e.ok(nil, "system", "info", "--format", "json")), &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(e.ok(nil, "info", "--format", "json")), &b); err != nil {
		t.Fatal(err)
	}
	if a["store"] != e.store || a["images"] != b["images"] || a["images"] != float64(1) {
		t.Errorf("system info = %v, info = %v", a, b)
	}
}
