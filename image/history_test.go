package image

import (
	"reflect"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestHistory: steps newest first, each non-empty one sized by its own
// layer (in order), the image's id on the newest step only, and layers no
// step describes listed too.
func TestHistory(t *testing.T) {
	s, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t1, t2 := time.Unix(100, 0).UTC(), time.Unix(200, 0).UTC()
	layers := []ocispec.Descriptor{{Size: 10}, {Size: 20}}
	diffs := []digest.Digest{digest.FromString("a"), digest.FromString("b")}
	img := func(h []ocispec.History) Image {
		return Image{ID: digest.FromString("config"), Manifest: ocispec.Manifest{Layers: layers},
			Config: ocispec.Image{Created: &t2, History: h, RootFS: ocispec.RootFS{DiffIDs: diffs}}}
	}
	id := digest.FromString("config").String()
	for _, tc := range []struct {
		name    string
		history []ocispec.History
		want    []HistoryEntry
	}{
		{"steps", []ocispec.History{
			{Created: &t1, CreatedBy: "ADD rootfs", Comment: "imported"},
			{Created: &t1, CreatedBy: "ENV A=1", EmptyLayer: true},
			{Created: &t2, CreatedBy: "RUN x"},
		}, []HistoryEntry{
			{ID: id, Created: t2, CreatedBy: "RUN x", Size: 20},
			{Created: t1, CreatedBy: "ENV A=1", EmptyLayer: true},
			{Created: t1, CreatedBy: "ADD rootfs", Comment: "imported", Size: 10},
		}},
		{"no history", nil, []HistoryEntry{{ID: id, Created: t2, Size: 20}, {Created: t2, Size: 10}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := s.History(img(tc.history)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
