package image

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestExportSelection: which images and tags `save` gets for each kind of
// reference, as Docker resolves them.
func TestExportSelection(t *testing.T) {
	s := openTestStore(t)
	if _, err := s.Load(LoadOptions{}, func(add AddFunc) error {
		if err := add(testImage(t, []string{"busybox:1", "busybox:latest"}, &counted{blob: testLayer(t, "a", "1")})); err != nil {
			return err
		}
		if err := add(testImage(t, []string{"busybox:2", "other:1"}, &counted{blob: testLayer(t, "a", "2")})); err != nil {
			return err
		}
		return add(testImage(t, nil, &counted{blob: testLayer(t, "a", "3")}))
	}); err != nil {
		t.Fatal(err)
	}
	other, _ := s.Resolve("other:1")
	cases := []struct {
		refs []string
		want [][]string // tags per image, images in digest order
	}{
		{[]string{"busybox:1"}, [][]string{{"docker.io/library/busybox:1"}}},
		{[]string{"busybox"}, nil}, // every tag: checked below by count
		{[]string{"busybox:2", "other:1"}, [][]string{{"docker.io/library/busybox:2", "docker.io/library/other:1"}}},
		{[]string{other.ID.Encoded()[:12]}, [][]string{nil}},
		{[]string{"other:1", other.ID.String()}, [][]string{{"docker.io/library/other:1"}}},
	}
	for _, tc := range cases {
		t.Run(tc.refs[0], func(t *testing.T) {
			var got [][]string
			err := s.Export(tc.refs, func(imgs []ExportImage) error {
				if !slices.IsSortedFunc(imgs, func(a, b ExportImage) int { return strings.Compare(string(a.Digest), string(b.Digest)) }) {
					t.Error("images not sorted by digest")
				}
				for _, img := range imgs {
					got = append(got, img.Tags)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == nil {
				n := 0
				for _, tags := range got {
					n += len(tags)
				}
				if len(got) != 2 || n != 3 {
					t.Errorf("busybox saved %v, want its 3 tags on 2 images", got)
				}
				return
			}
			if !slices.EqualFunc(got, tc.want, slices.Equal) {
				t.Errorf("saved %v, want %v", got, tc.want)
			}
		})
	}
	if err := s.Export([]string{"absent:1"}, func([]ExportImage) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Errorf("saving an absent image: %v, want ErrNotFound", err)
	}
}
