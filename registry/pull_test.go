package registry

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"nook/image"
)

func TestPickPlatform(t *testing.T) {
	entry := func(os, arch, variant string) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString(os + arch + variant), Size: 1,
			Platform: &ocispec.Platform{OS: os, Architecture: arch, Variant: variant}}
	}
	idx, _ := json.Marshal(ocispec.Index{Manifests: []ocispec.Descriptor{
		entry("unknown", "unknown", ""), entry("linux", "amd64", ""), entry("linux", "arm", "v7"), entry("linux", "arm64", "v8"),
	}})
	for _, tc := range []struct {
		platform image.Platform
		want     string // the picked entry, or the error's text
	}{
		{image.Platform{OS: "linux", Architecture: "amd64"}, "linux/amd64"},
		{image.Platform{OS: "linux", Architecture: "arm64"}, "linux/arm64/v8"},
		{image.Platform{OS: "linux", Architecture: "arm", Variant: "v7"}, "linux/arm/v7"},
		{image.Platform{OS: "linux", Architecture: "s390x"}, "no image for platform linux/s390x (the image has: linux/amd64, linux/arm/v7, linux/arm64/v8)"},
	} {
		d, err := pickPlatform(idx, tc.platform, "app")
		got := ""
		if err != nil {
			if !errors.Is(err, ErrPlatform) || strings.Contains(err.Error(), "\n") {
				t.Errorf("%s: error %v, want one line wrapping ErrPlatform", tc.platform, err)
			}
			got = strings.TrimPrefix(err.Error(), "app: ")
		} else {
			got = image.Platform{OS: d.Platform.OS, Architecture: d.Platform.Architecture, Variant: d.Platform.Variant}.String()
		}
		if got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.platform, got, tc.want)
		}
	}
}

func TestCheckManifestRefuses(t *testing.T) {
	layer := func(mt string) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: mt, Digest: digest.FromString(mt), Size: 1}
	}
	manifest := func(config string, layers ...ocispec.Descriptor) []byte {
		b, _ := json.Marshal(ocispec.Manifest{Config: ocispec.Descriptor{MediaType: config, Digest: digest.FromString("c"), Size: 1}, Layers: layers})
		return b
	}
	for _, tc := range []struct {
		name, mediaType string
		raw             []byte
		want            string // "" accepts
	}{
		{"docker schema 2", mediaTypeDockerManifest, manifest(mediaTypeDockerConfig, layer(mediaTypeDockerLayer)), ""},
		{"oci zstd", ocispec.MediaTypeImageManifest, manifest(ocispec.MediaTypeImageConfig, layer(ocispec.MediaTypeImageLayerZstd), layer(ocispec.MediaTypeImageLayer)), ""},
		{"schema 1", mediaTypeSchema1Signed, []byte(`{"schemaVersion":1}`), "schema 1"},
		{"foreign layer", mediaTypeDockerManifest, manifest(mediaTypeDockerConfig, layer("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip")), "foreign layer"},
		{"artifact", ocispec.MediaTypeImageManifest, manifest("application/vnd.cncf.helm.config.v1+json"), "no image config"},
		{"unknown layer", ocispec.MediaTypeImageManifest, manifest(ocispec.MediaTypeImageConfig, layer("application/x-thing")), "layer media type"},
		{"not json", ocispec.MediaTypeImageManifest, []byte("{"), "parsing manifest"},
	} {
		m := &resolved{raw: tc.raw, mediaType: tc.mediaType}
		err := m.checkManifest("app")
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %v, want one line saying %q", tc.name, err, tc.want)
		}
	}
}

// TestReadMetadataLimit: a manifest or config over 4 MiB is refused before
// it is read; one whose bytes are not its digest's is a verification error.
func TestReadMetadataLimit(t *testing.T) {
	big := ocispec.Descriptor{Digest: digest.FromString("x"), Size: maxMetadata + 1}
	if _, err := readMetadata(io.NopCloser(strings.NewReader("")), big, "app"); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "4 MiB") {
		t.Errorf("over the limit: %v", err)
	}
	wrong := ocispec.Descriptor{Digest: digest.FromString("y"), Size: 1}
	if _, err := readMetadata(io.NopCloser(strings.NewReader("x")), wrong, "app"); !errors.Is(err, image.ErrVerify) {
		t.Errorf("wrong bytes: %v", err)
	}
	ok := ocispec.Descriptor{Digest: digest.FromString("{}"), Size: 2}
	if b, err := readMetadata(io.NopCloser(strings.NewReader("{}")), ok, "app"); err != nil || string(b) != "{}" {
		t.Errorf("good bytes: %q, %v", b, err)
	}
}
