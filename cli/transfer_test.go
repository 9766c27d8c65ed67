package cli

import (
	"bytes"
	"testing"

	"nook/registry"
)

// TestTransferViewNotTerminal: off a terminal each layer event is a line
// and byte counts are left out; quiet shows nothing.
func TestTransferViewNotTerminal(t *testing.T) {
	var buf bytes.Buffer
	g := &Globals{Stderr: &buf}
	v := g.newTransferView(false)
	for _, e := range []registry.Event{
		{ID: "a1", Status: registry.StatusPullingFS, Total: 10},
		{ID: "a1", Status: registry.StatusDownloading, Current: 5, Total: 10},
		{ID: "a1", Status: registry.StatusVerifying, Current: 10, Total: 10},
		{ID: "a1", Status: registry.StatusPullComplete},
		{ID: "b2", Status: registry.StatusExists},
		{ID: "c3", Status: registry.StatusMounted, Detail: "team/base"},
	} {
		v.Event(e)
	}
	v.Done()
	want := "a1: Pulling fs layer\na1: Verifying Checksum\na1: Pull complete\nb2: Already exists\nc3: Mounted from team/base\n"
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
	var quiet *transferView = g.newTransferView(true)
	quiet.Event(registry.Event{ID: "x", Status: registry.StatusPullingFS})
	quiet.Done()
}

func TestEventText(t *testing.T) {
	e := registry.Event{ID: "a1", Status: registry.StatusDownloading, Current: 12_300_000, Total: 45_600_000}
	if got := eventText(e, true); got != "Downloading 12.3MB/45.6MB" {
		t.Errorf("eventText = %q", got)
	}
}
