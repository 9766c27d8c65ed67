package image

import (
	"errors"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func fakeImages() []Image {
	mk := func(cfg, man string, names ...string) Image {
		return Image{
			ID:     digest.NewDigestFromEncoded(digest.SHA256, cfg+strings.Repeat("0", 64-len(cfg))),
			Digest: digest.NewDigestFromEncoded(digest.SHA256, man+strings.Repeat("0", 64-len(man))),
			Names:  names,
		}
	}
	return []Image{
		mk("abc1", "f1", "docker.io/library/busybox:latest", "docker.io/library/busybox:1.36"),
		mk("abc2", "f2", "registry.lab:5000/team/app:v1"),
		mk("dead", "f3"),
		// pulled by the digest of a multi-platform index (e1…), not its manifest's (f4…)
		mk("abc3", "f4", "registry.lab:5000/multi@sha256:e1"+strings.Repeat("0", 62)),
	}
}

func TestResolve(t *testing.T) {
	imgs := fakeImages()
	cases := []struct {
		ref      string
		wantID   string // prefix of the id, "" when an error is wanted
		wantName string
		wantErr  error
	}{
		{"busybox", "abc1", "docker.io/library/busybox:latest", nil},
		{"busybox:1.36", "abc1", "docker.io/library/busybox:1.36", nil},
		{"docker.io/library/busybox", "abc1", "docker.io/library/busybox:latest", nil},
		{"library/busybox:latest", "abc1", "docker.io/library/busybox:latest", nil},
		{"registry.lab:5000/team/app:v1", "abc2", "registry.lab:5000/team/app:v1", nil},
		{"registry.lab:5000/team/app@sha256:f2" + strings.Repeat("0", 62), "abc2", "", nil},
		{"busybox@sha256:f2" + strings.Repeat("0", 62), "", "", ErrNotFound},
		{"registry.lab:5000/multi@sha256:e1" + strings.Repeat("0", 62), "abc3", "", nil},
		{"registry.lab:5000/multi@sha256:f4" + strings.Repeat("0", 62), "abc3", "", nil},
		{"registry.lab:5000/other@sha256:e1" + strings.Repeat("0", 62), "", "", ErrNotFound},
		{"dead", "dead", "", nil},
		{"sha256:dead", "dead", "", nil},
		{"abc2" + strings.Repeat("0", 60), "abc2", "", nil},
		{"abc", "", "", ErrAmbiguous},
		{"busybox:2", "", "", ErrNotFound},
		{"app:v1", "", "", ErrNotFound},
		{"Upper/Case", "", "", ErrInvalidReference},
		{"a::b", "", "", ErrInvalidReference},
		{"", "", "", ErrInvalidReference},
		{"beef", "", "", ErrNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.ref, func(t *testing.T) {
			img, name, err := resolveIn(imgs, tc.ref)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if tc.ref != "" && !strings.Contains(err.Error(), tc.ref) && !errors.Is(err, ErrNotFound) {
					t.Errorf("error %q does not name %q", err, tc.ref)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(img.ID.Encoded(), tc.wantID) || name != tc.wantName {
				t.Errorf("got %s via %q, want %s via %q", img.ID, name, tc.wantID, tc.wantName)
			}
		})
	}
}

func FuzzResolve(f *testing.F) {
	for _, s := range []string{"busybox", "sha256:abc", "a/b:c@sha256:00", "localhost:5000/x", "ABC", "dead"} {
		f.Add(s)
	}
	imgs := fakeImages()
	f.Fuzz(func(t *testing.T, ref string) {
		img, _, err := resolveIn(imgs, ref)
		if err == nil && img.ID == "" {
			t.Fatalf("resolved %q to an empty image", ref)
		}
		if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrInvalidReference) && !errors.Is(err, ErrAmbiguous) {
			t.Fatalf("resolving %q: unexpected error class: %v", ref, err)
		}
	})
}

func TestIndexNames(t *testing.T) {
	d1 := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("1"), Size: 1}
	d2 := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("2"), Size: 1}
	var idx ocispec.Index
	names := func() string {
		var out []string
		for _, d := range idx.Manifests {
			out = append(out, d.Digest.Encoded()[:4]+"="+d.Annotations[AnnotationRefName])
		}
		sort.Strings(out)
		return strings.Join(out, " ")
	}
	one, two := d1.Digest.Encoded()[:4], d2.Digest.Encoded()[:4]
	steps := []struct {
		do   func()
		want string
	}{
		{func() { setName(&idx, d1, "") }, one + "="},
		{func() { setName(&idx, d1, "") }, one + "="},
		{func() { setName(&idx, d1, "a") }, one + "=a"},
		{func() { setName(&idx, d1, "b") }, one + "=a " + one + "=b"},
		{func() { setName(&idx, d2, "a") }, one + "=b " + two + "=a"},
		{func() { removeName(&idx, "b") }, one + "= " + two + "=a"},
		{func() { setName(&idx, d2, "a") }, one + "= " + two + "=a"},
		{func() { dropImage(&idx, d1.Digest) }, two + "=a"},
	}
	for i, s := range steps {
		s.do()
		if got := names(); got != s.want {
			t.Fatalf("step %d: index = %q, want %q", i, got, s.want)
		}
	}
}

// TestResolveInStore: Resolve over a real store gives what resolveIn gives
// over all its images, for names, ids and prefixes; a tagged name reads
// only its own image, so a damaged other image does not stop it (listing
// all images still reports the damage).
func TestResolveInStore(t *testing.T) {
	s := openTestStore(t)
	if _, err := s.Load(LoadOptions{}, func(add AddFunc) error {
		if err := add(testImage(t, []string{"a:1", "a:latest"}, &counted{blob: testLayer(t, "a", "a")})); err != nil {
			return err
		}
		return add(testImage(t, []string{"b:1"}, &counted{blob: testLayer(t, "b", "b")}))
	}); err != nil {
		t.Fatal(err)
	}
	imgs, err := s.Images()
	if err != nil {
		t.Fatal(err)
	}
	a, _, _ := resolveIn(imgs, "a:1")
	for _, ref := range []string{"a:1", "a", "docker.io/library/a:latest", "b:1", "b", "c:1", a.ID.String(), a.ID.Encoded()[:12],
		a.ID.Encoded(), "docker.io/library/a@" + a.Digest.String(), "NOT/valid"} {
		want, _, wantErr := resolveIn(imgs, ref)
		got, err := s.Resolve(ref)
		if (err == nil) != (wantErr == nil) || got.ID != want.ID || strings.Join(got.Names, ",") != strings.Join(want.Names, ",") {
			t.Errorf("Resolve(%q) = %s %v, %v; resolveIn gives %s %v, %v", ref, got.ID, got.Names, err, want.ID, want.Names, wantErr)
		}
	}

	b, _, _ := resolveIn(imgs, "b:1")
	if err := os.Chmod(s.abs(blobName(b.ID)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.abs(blobName(b.ID)), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Resolve("a:1"); err != nil || got.ID != a.ID {
		t.Errorf("a:1 beside a damaged image: %s, %v", got.ID, err)
	}
	if _, err := s.Resolve("b:1"); !errors.Is(err, ErrCorruptStore) {
		t.Errorf("the damaged image itself: %v, want ErrCorruptStore", err)
	}
	if _, err := s.Images(); !errors.Is(err, ErrCorruptStore) {
		t.Errorf("listing with a damaged image: %v, want ErrCorruptStore", err)
	}
}
