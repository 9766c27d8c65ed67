package image

import (
	"fmt"
	"strings"

	"cuelabs.dev/go/oci/ociregistry/ociref"
	"github.com/opencontainers/go-digest"
)

// Docker Hub's names: what a reference without a registry means.
const (
	hubDomain       = "docker.io"
	hubLegacyDomain = "index.docker.io"
	hubOfficial     = "library/"
	maxNameLength   = 255
)

// Ref is an image reference in Docker's normalized form:
// docker.io/library/busybox:latest, localhost:5000/app@sha256:….
//
// The grammar is the distribution spec's, checked by ociref, whose
// patterns compile on first use: every nook process (CLI, shim, init)
// links this package, and a grammar compiled at package init cost each of
// them ~2.5 ms before main.
type Ref struct {
	Domain string // registry host[:port]; "" only in a quirk of Docker's (parseRef)
	Path   string // repository within it: library/busybox
	Tag    string
	Digest digest.Digest
}

// ParseRef parses a reference as `docker` does: without a registry it names
// Docker Hub, and a one-part name there is an official image (library/).
// No default tag is added.
func ParseRef(s string) (Ref, error) {
	r, err := parseRef(s)
	if err != nil {
		return Ref{}, fmt.Errorf("%w: %q: %s", ErrInvalidReference, s, err)
	}
	return r, nil
}

func parseRef(s string) (Ref, error) {
	if isHexID(s) {
		return Ref{}, fmt.Errorf("invalid repository name (%s), cannot specify 64-byte hexadecimal strings", s)
	}
	domain, rest := splitDomain(s)
	// Docker Hub, the common case, spares compiling the host pattern.
	if domain != hubDomain && !validHost(domain) {
		if !ociref.IsValidRepository(domain) {
			return Ref{}, fmt.Errorf("invalid reference format")
		}
		// Docker's quirk: a first part with a dot that is no host name
		// (a_b.c) but a path component leaves the name without a domain.
		domain, rest = "", s
	}
	// rest is path[:tag][@digest]. ociref reads a first component that
	// looks like a host as one; here it is still part of the path.
	p, err := ociref.ParseRelative(rest)
	if err != nil {
		return Ref{}, refError(rest)
	}
	r := Ref{Domain: domain, Path: p.Repository, Tag: p.Tag, Digest: p.Digest}
	if p.Host != "" {
		// The path checked whole: ociref checked its host part as one.
		r.Path = p.Host + "/" + p.Repository
		if !ociref.IsValidRepository(r.Path) {
			return Ref{}, refError(r.Path)
		}
	}
	if len(r.Name()) > maxNameLength {
		return Ref{}, fmt.Errorf("repository name must not be more than %d characters", maxNameLength)
	}
	return r, nil
}

// refError says why a path failed the grammar where Docker says so.
func refError(path string) error {
	if name, _, _ := strings.Cut(path, ":"); strings.ToLower(name) != name {
		return fmt.Errorf("repository name must be lowercase")
	}
	return fmt.Errorf("invalid reference format")
}

// splitDomain takes the registry off the front of a reference. As in
// Docker, the first part names a registry only when it cannot be a
// repository component: localhost, a dot or colon (host.name, host:port,
// [::1]), or capitals.
func splitDomain(s string) (domain, rest string) {
	first, after, found := strings.Cut(s, "/")
	switch {
	case !found:
		return hubDomain, hubOfficial + s
	case first == hubLegacyDomain || first == hubDomain:
		domain, rest = hubDomain, after
	case first == "localhost" || strings.ContainsAny(first, ".:") || strings.ToLower(first) != first:
		return first, after
	default:
		domain, rest = hubDomain, s
	}
	if !strings.Contains(rest, "/") {
		rest = hubOfficial + rest
	}
	return domain, rest
}

// validHost accepts what Docker accepts as a registry. ociref wants a dot
// or a port to tell a host from a path component; splitDomain has already
// decided that a bare name (localhost, Registry) is a host.
func validHost(h string) bool {
	if ociref.IsValidHost(h) {
		return true
	}
	return !strings.Contains(h, ":") && ociref.IsValidHost(h+":1")
}

// isHexID reports a whole image id without its algorithm, which Docker
// refuses as a name.
func isHexID(s string) bool {
	return len(s) == 64 && !strings.HasPrefix(s, "sha256:") && isIDPrefix(s)
}

// Name is the repository's full name: docker.io/library/busybox.
func (r Ref) Name() string {
	if r.Domain == "" {
		return r.Path
	}
	return r.Domain + "/" + r.Path
}

// String is the full reference: name[:tag][@digest].
func (r Ref) String() string { return r.Name() + r.suffix() }

// NameOnly reports a reference with neither tag nor digest.
func (r Ref) NameOnly() bool { return r.Tag == "" && r.Digest == "" }

// FamiliarName is the name as Docker prints it: busybox, team/app,
// localhost:5000/app.
func (r Ref) FamiliarName() string {
	if r.Domain != hubDomain {
		return r.Name()
	}
	if short, ok := strings.CutPrefix(r.Path, hubOfficial); ok && !strings.Contains(short, "/") {
		return short
	}
	return r.Path
}

// Familiar is the reference as Docker prints it: busybox:latest.
func (r Ref) Familiar() string { return r.FamiliarName() + r.suffix() }

func (r Ref) suffix() string {
	s := ""
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + string(r.Digest)
	}
	return s
}
