// Package hosts says how to reach a registry: the mirrors, insecure and
// blocked registries of registries.conf (version 2, as Podman, skopeo and
// buildah read it), TLS roots and client certificates from certs.d, plain
// HTTP for registries marked insecure and for loopback, and credentials
// where Docker, Podman and skopeo keep them. It hands out ready oras-go
// repositories; it does not move content.
//
// SKELETON: the API registry/ builds on. The implementation below only
// knows loopback and the default auth file; the reg-hosts branch fills it in.
package hosts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"

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

// Resolve returns where to reach repository name ("docker.io/library/busybox"):
// for a pull the mirrors first, in registries.conf's order, then the
// registry itself; for a push the registry alone.
func Resolve(name string, forPush bool, opts Options) ([]Endpoint, error) {
	repo, err := remote.NewRepository(name)
	if err != nil {
		return nil, fmt.Errorf("repository %s: %w", name, err)
	}
	host := repo.Reference.Registry
	store, err := credentialStore(opts)
	if err != nil {
		return nil, err
	}
	repo.PlainHTTP = isLoopback(host)
	repo.Client = &auth.Client{
		Client:     &http.Client{Transport: retry.NewTransport(http.DefaultTransport)},
		Cache:      auth.NewCache(),
		Credential: credentials.Credential(store),
	}
	return []Endpoint{{Repo: repo, Host: host}}, nil
}

// Login checks user and password against host and, when they are
// accepted, saves them where Resolve finds them.
func Login(ctx context.Context, host, user, password string, opts Options) error {
	return errors.New("login: not yet")
}

// Logout removes host's saved credentials.
func Logout(ctx context.Context, host string, opts Options) error {
	return errors.New("logout: not yet")
}

func credentialStore(opts Options) (credentials.Store, error) {
	if opts.AuthFile != "" {
		return credentials.NewStore(opts.AuthFile, credentials.StoreOptions{})
	}
	return credentials.NewStoreFromDocker(credentials.StoreOptions{})
}

func isLoopback(host string) bool {
	h := host
	if sh, _, err := net.SplitHostPort(host); err == nil {
		h = sh
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(h, "[]"))
	return ip != nil && ip.IsLoopback()
}
