package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"nook/image"
)

// TestImageRowCreated: an image whose config has no "created" (legacy
// archives, reproducible builds) shows N/A, not "292 years ago" from Go's
// zero time.
func TestImageRowCreated(t *testing.T) {
	when := time.Now().Add(-3 * time.Hour)
	for _, tc := range []struct {
		created         *time.Time
		wantAt, wantAgo string
	}{
		{nil, "N/A", "N/A"},
		{&when, when.Format("2006-01-02 15:04:05 -0700 MST"), "3 hours ago"},
	} {
		row := newImageRow(image.Image{ID: digest.FromString("config"), Config: ocispec.Image{Created: tc.created}}, "", false)
		if row.CreatedAt != tc.wantAt || !strings.HasPrefix(row.CreatedSince, tc.wantAgo) {
			t.Errorf("created %v: CreatedAt %q, CreatedSince %q; want %q, %q", tc.created, row.CreatedAt, row.CreatedSince, tc.wantAt, tc.wantAgo)
		}
	}
}
