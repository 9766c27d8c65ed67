// Package hosts says how to reach a registry: the mirrors, insecure and
// blocked registries of registries.conf (version 2, as Podman, skopeo and
// buildah read it), TLS roots and client certificates from certs.d, plain
// HTTP for registries marked insecure and for loopback, and credentials
// where Docker, Podman and skopeo keep them. It hands out ready oras-go
// repositories; it does not move content.
//
// Nothing here runs at start-up: configuration is read when a command
// reaches for a registry.
package hosts

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/retry"
)

// ErrBlocked: registries.conf blocks the registry.
var ErrBlocked = errors.New("blocked by registries.conf")

// Options say what the command line adds to the configuration files.
type Options struct {
	// TLSVerify, when false, skips certificate checks (--tls-verify=false);
	// nil takes registries.conf's word.
	TLSVerify *bool
	// AuthFile overrides where credentials are read and written
	// (--authfile); empty means Docker's config.json and its fallbacks.
	AuthFile string
	Log      *slog.Logger
}

// Endpoint is one place a repository's content can be fetched from.
type Endpoint struct {
	Repo   *remote.Repository // client with auth, TLS and retries set
	Host   string             // host[:port] as the user would name it, for messages
	Mirror bool               // a mirror of the registry the reference names
}

// Resolve returns where to reach repository name
// ("docker.io/library/busybox", with or without ":tag" or "@digest"; the
// mirror rules of registries.conf that depend on a digest need it): for a
// pull the mirrors first, in registries.conf's order, then the registry
// itself (or the location registries.conf moves it to); for a push the
// registry alone. A blocked registry is ErrBlocked.
func Resolve(name string, forPush bool, opts Options) ([]Endpoint, error) {
	c, err := loadConf(defaultConfPaths())
	if err != nil {
		return nil, err
	}
	routes, err := c.routes(name, forPush)
	if err != nil {
		return nil, err
	}
	store, err := readStore(opts)
	if err != nil {
		return nil, err
	}
	insecure := map[string]bool{}
	for _, r := range routes {
		insecure[hostOf(r.ref)] = insecure[hostOf(r.ref)] || r.insecure
	}
	tr := newTransport(certsDirs(), opts.TLSVerify, func(host string) bool {
		return insecure[host] || c.insecureHost(host)
	})
	client := newClient(tr, store)
	eps := make([]Endpoint, 0, len(routes))
	for _, r := range routes {
		repo, err := remote.NewRepository(r.ref)
		if err != nil {
			return nil, fmt.Errorf("repository %s: %w", r.ref, err)
		}
		repo.Client = client
		eps = append(eps, Endpoint{Repo: repo, Host: repo.Reference.Registry, Mirror: r.mirror})
		if opts.Log != nil {
			opts.Log.Debug("registry endpoint", "name", name, "ref", r.ref, "mirror", r.mirror, "insecure", r.insecure)
		}
	}
	return eps, nil
}

// newClient puts auth (credentials from store, when not nil) and retries
// over tr: 429 waits as Retry-After says, 5xx and dropped connections
// back off exponentially, five retries at most.
func newClient(tr http.RoundTripper, store credentials.Store) *auth.Client {
	c := &auth.Client{
		Client: &http.Client{Transport: &retry.Transport{Base: tr, Policy: retryPolicy}},
		Cache:  auth.NewCache(),
	}
	if store != nil {
		c.Credential = credentials.Credential(store)
	}
	return c
}

func retryPolicy() retry.Policy {
	return &retry.GenericPolicy{
		Retryable: retry.DefaultPredicate,
		Backoff:   retry.DefaultBackoff,
		MinWait:   200 * time.Millisecond,
		MaxWait:   20 * time.Second, // a registry's Retry-After, within reason
		MaxRetry:  5,
	}
}
