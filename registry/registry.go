// Package registry moves images between a registry and the store: pull
// (manifests and blobs fetched concurrently, each layer verified and
// unpacked as it arrives, committed to the store under its lock only once
// every blob is verified) and push (blobs the registry lacks uploaded,
// uncompressed layers compressed on the way). The distribution protocol,
// auth challenges and retries come from oras-go v2; where and how to reach
// a registry (mirrors, TLS, credentials) comes from registry/hosts.
//
// Network I/O never happens while the store's lock is held.
package registry

import (
	"errors"
	"fmt"
	"net/http"

	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/errcode"

	"nook/registry/hosts"
)

// Sentinel errors callers branch on; each is wrapped in a one-line message
// naming the reference or registry.
var (
	// ErrNotFound: the registry has no such manifest (tag or digest).
	ErrNotFound = errors.New("manifest unknown")
	// ErrDenied: the repository does not exist or the credentials may not
	// read (or write) it; the registry does not say which.
	ErrDenied = errors.New("repository not found or access denied")
	// ErrUnauthorized: the registry refused the credentials given.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrUnsupported: content nook does not take (schema 1, foreign
	// layers, an unknown media type, a manifest over the size limit).
	ErrUnsupported = errors.New("unsupported content")
	// ErrPlatform: a multi-platform index holds no image for the platform.
	ErrPlatform = errors.New("no image for platform")
)

// explain maps an error from oras-go onto the package's sentinels, naming
// what (a reference) and host (the registry, for the login remedy).
func explain(err error, what, host string) error {
	var resp *errcode.ErrorResponse
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errdef.ErrNotFound):
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	case errors.Is(err, auth.ErrBasicCredentialNotFound):
		// The registry asked for a password and none is saved.
		return fmt.Errorf("%s: %w: log in with `nook login %s`", what, ErrUnauthorized, host)
	case errors.As(err, &resp):
		switch resp.StatusCode {
		case http.StatusNotFound:
			return fmt.Errorf("%s: %w", what, ErrNotFound)
		case http.StatusUnauthorized:
			return fmt.Errorf("%s: %w: log in with `nook login %s`", what, ErrUnauthorized, host)
		case http.StatusForbidden:
			return fmt.Errorf("%s: %w: log in with `nook login %s`", what, ErrDenied, host)
		}
	}
	return fmt.Errorf("%s: %w", what, hosts.Explain(err))
}
