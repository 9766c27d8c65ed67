package hosts

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

// Credentials live where Docker keeps them, $DOCKER_CONFIG/config.json
// (~/.docker/config.json), through its credsStore and credHelpers when
// it names them; login writes there (or to --authfile). Reading also
// looks in $REGISTRY_AUTH_FILE and Podman's auth.json files. The file
// store (oras-go's) rewrites the file whole through a temporary file and
// a rename, mode 0600, keeping every key it does not own.

var (
	// ErrBadCredentials: the registry refused the user and password.
	ErrBadCredentials = errors.New("unauthorized: incorrect username or password")
	// ErrNotLoggedIn: logout found no credentials for the registry.
	ErrNotLoggedIn = errors.New("not logged in")
)

// hubKey is the key Docker files Docker Hub's credentials under.
const hubKey = "https://index.docker.io/v1/"

// ServerName is how nook names the registry a user typed for login and
// logout: docker.io when empty or when it names Docker Hub, else the
// host[:port] of what may be a URL ("https://r.example/v2/").
func ServerName(server string) string {
	s := strings.TrimSpace(server)
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	s, _, _ = strings.Cut(s, "/")
	switch s {
	case "", "docker.io", "index.docker.io", "registry-1.docker.io":
		return "docker.io"
	}
	return s
}

// readStore is where Resolve finds credentials: --authfile alone, or
// Docker's config then $REGISTRY_AUTH_FILE then Podman's files.
func readStore(opts Options) (credentials.Store, error) {
	if opts.AuthFile != "" {
		s, err := openStore(opts.AuthFile)
		return hubAlias{s}, err
	}
	primary, err := dockerStore()
	if err != nil {
		return nil, err
	}
	var fallbacks []credentials.Store
	for _, path := range podmanAuthFiles() {
		if _, err := os.Stat(path); err != nil {
			continue
		}
		s, err := openStore(path)
		if err != nil {
			return nil, err
		}
		fallbacks = append(fallbacks, hubAlias{s})
	}
	return credentials.NewStoreWithFallbacks(hubAlias{primary}, fallbacks...), nil
}

// writeStore is where login saves and logout removes: --authfile, or
// Docker's config.
func writeStore(opts Options) (credentials.Store, error) {
	if opts.AuthFile != "" {
		return openStore(opts.AuthFile)
	}
	return dockerStore()
}

func dockerStore() (credentials.Store, error) {
	dir := os.Getenv("DOCKER_CONFIG")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return nil, fmt.Errorf("finding Docker's config.json: %w", err)
		}
		dir = filepath.Join(home, ".docker")
	}
	return openStore(filepath.Join(dir, "config.json"))
}

func openStore(path string) (credentials.Store, error) {
	s, err := credentials.NewStore(path, credentials.StoreOptions{AllowPlaintextPut: true})
	if err != nil {
		return nil, fmt.Errorf("reading credentials in %s: %w", path, errors.Unwrap(err))
	}
	return s, nil
}

// podmanAuthFiles are the files containers/image reads besides Docker's,
// in its order.
func podmanAuthFiles() []string {
	var files []string
	if f := os.Getenv("REGISTRY_AUTH_FILE"); f != "" {
		files = append(files, f)
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		files = append(files, filepath.Join(d, "containers", "auth.json"))
	}
	return append(files, filepath.Join(configHome(), "containers", "auth.json"))
}

// hubAlias also finds Docker Hub's credentials under "docker.io", the key
// Podman and skopeo write.
type hubAlias struct{ credentials.Store }

func (h hubAlias) Get(ctx context.Context, key string) (auth.Credential, error) {
	cred, err := h.Store.Get(ctx, key)
	if err == nil && cred == auth.EmptyCredential && key == hubKey {
		return h.Store.Get(ctx, "docker.io")
	}
	return cred, err
}

// Login checks user and password against host and, when they are
// accepted, saves them where Resolve finds them.
func Login(ctx context.Context, host, user, password string, opts Options) error {
	host = ServerName(host)
	c, err := loadConf(defaultConfPaths())
	if err != nil {
		return err
	}
	if _, err := c.routes(host, true); err != nil {
		return err
	}
	reg, err := remote.NewRegistry(host)
	if err != nil {
		return fmt.Errorf("registry %q: %w", host, err)
	}
	reg.Client = newClient(newTransport(certsDirs(), opts.TLSVerify, c.insecureHost), nil)
	store, err := writeStore(opts)
	if err != nil {
		return err
	}
	err = credentials.Login(ctx, store, reg, auth.Credential{Username: user, Password: password})
	if err == nil {
		return nil
	}
	if inner := errors.Unwrap(err); inner != nil {
		err = inner // past oras-go's "failed to validate/store" wording
	}
	var resp *errcode.ErrorResponse
	if errors.As(err, &resp) && resp.StatusCode == http.StatusUnauthorized {
		return fmt.Errorf("login to %s: %w", host, ErrBadCredentials)
	}
	if ex := Explain(err); ex != err {
		return ex // names the host already
	}
	return fmt.Errorf("login to %s: %w", host, err)
}

// Logout removes host's saved credentials, also under the keys older
// Docker versions wrote (http:// and https:// before the host), as
// Docker's logout does.
func Logout(ctx context.Context, host string, opts Options) error {
	host = ServerName(host)
	store, err := writeStore(opts)
	if err != nil {
		return err
	}
	key := credentials.ServerAddressFromRegistry(host)
	cred, err := store.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("reading credentials for %s: %w", host, err)
	}
	if cred == auth.EmptyCredential {
		return fmt.Errorf("%s: %w", host, ErrNotLoggedIn)
	}
	keys := []string{key}
	if key == host {
		keys = append(keys, "http://"+host, "https://"+host, "https://"+host+"/")
	}
	for _, k := range keys {
		if err := store.Delete(ctx, k); err != nil {
			return fmt.Errorf("removing credentials for %s: %w", host, err)
		}
	}
	return nil
}
