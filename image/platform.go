package image

import (
	"fmt"
	"runtime"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Platform is an OS/architecture[/variant] to pick from an index.
type Platform struct {
	OS, Architecture, Variant string
}

func (p Platform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// HostPlatform is this machine's platform.
func HostPlatform() Platform {
	p := Platform{OS: "linux", Architecture: runtime.GOARCH}
	if p.Architecture == "arm" {
		p.Variant = "v7"
	}
	return p
}

// ParsePlatform parses os/arch[/variant] as `--platform` takes it.
func ParsePlatform(s string) (Platform, error) {
	parts := strings.Split(strings.ToLower(s), "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return Platform{}, fmt.Errorf("invalid platform %q: want os/arch[/variant]", s)
	}
	p := Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// Matches reports whether an image of os/arch/variant runs as p. A
// variant the user did not ask for does not matter; arm64's only variant
// is v8.
func (p Platform) Matches(os, arch, variant string) bool {
	if os != p.OS || arch != p.Architecture {
		return false
	}
	if p.Variant == "" || variant == p.Variant {
		return true
	}
	return arch == "arm64" && variant == "" && p.Variant == "v8"
}

// MatchesDesc is Matches for an index entry's platform (nil matches nothing).
func (p Platform) MatchesDesc(q *ocispec.Platform) bool {
	return q != nil && p.Matches(q.OS, q.Architecture, q.Variant)
}
