package hosts

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
)

// How a connection to a host is made: TLS verified against the system's
// roots plus the host's certs.d CAs, with the client certificates found
// there; verification skipped for insecure registries and under
// --tls-verify=false; plain HTTP only where the registry is insecure, or
// on loopback (as Docker allows), and only once the server has answered
// the TLS hello in plain HTTP. An explicit --tls-verify=true allows
// neither.

// certsDirs are the certs.d roots, searched in this order; the first
// holding a directory for the host is used, as containers/image does.
func certsDirs() []string {
	return []string{
		filepath.Join(configHome(), "containers", "certs.d"),
		"/etc/containers/certs.d",
		"/etc/docker/certs.d",
	}
}

// UserCertsDir is where the user puts host's CA certificate (ca.crt) and
// client certificates: $XDG_CONFIG_HOME/containers/certs.d/HOST[:PORT].
func UserCertsDir(host string) string {
	return filepath.Join(certsDirs()[0], host)
}

// loadCerts reads host's certs.d directory (the first of roots that has
// one) into cfg: *.crt are CAs added to the system's roots, each
// NAME.cert goes with NAME.key as a client certificate.
func loadCerts(roots []string, host string, cfg *tls.Config) error {
	var dir string
	var entries []os.DirEntry
	for _, root := range roots {
		d := filepath.Join(root, host)
		es, err := os.ReadDir(d)
		if err == nil {
			dir, entries = d, es
			break
		}
		if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("reading certificates: %w", err)
		}
	}
	for _, e := range entries {
		name := e.Name()
		path := filepath.Join(dir, name)
		switch {
		case strings.HasSuffix(name, ".crt"):
			pem, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("reading CA certificate: %w", err)
			}
			if cfg.RootCAs == nil {
				if cfg.RootCAs, err = x509.SystemCertPool(); err != nil {
					cfg.RootCAs = x509.NewCertPool()
				}
			}
			if !cfg.RootCAs.AppendCertsFromPEM(pem) {
				return fmt.Errorf("CA certificate %s: no PEM certificate in it", path)
			}
		case strings.HasSuffix(name, ".cert"):
			key := strings.TrimSuffix(path, ".cert") + ".key"
			pair, err := tls.LoadX509KeyPair(path, key)
			if err != nil {
				return fmt.Errorf("client certificate %s with key %s: %w", path, key, err)
			}
			cfg.Certificates = append(cfg.Certificates, pair)
		case strings.HasSuffix(name, ".key"):
			if _, err := os.Stat(strings.TrimSuffix(path, ".key") + ".cert"); err != nil {
				return fmt.Errorf("client key %s has no certificate %s.cert beside it", path, strings.TrimSuffix(name, ".key"))
			}
		}
	}
	return nil
}

// isLoopback: localhost, 127.0.0.0/8 and ::1, with or without a port.
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

// policy is how to talk to one host.
type policy struct {
	skipVerify bool // insecure, or --tls-verify=false
	plainOK    bool // may fall back to plain HTTP
}

func policyFor(host string, insecure bool, verify *bool) policy {
	if verify != nil {
		return policy{skipVerify: !*verify, plainOK: !*verify}
	}
	return policy{skipVerify: insecure, plainOK: insecure || isLoopback(host)}
}

// transport is the http.RoundTripper under auth and retries: one
// http.Transport per host, each with that host's TLS settings.
type transport struct {
	roots    []string
	verify   *bool
	insecure func(host string) bool // registries.conf's word

	mu    sync.Mutex
	hosts map[string]*hostTransport
}

type hostTransport struct {
	rt    *http.Transport
	err   error // reading its certs.d
	pol   policy
	plain atomic.Bool // the server answered TLS in plain HTTP
}

func newTransport(roots []string, verify *bool, insecure func(string) bool) *transport {
	return &transport{roots: roots, verify: verify, insecure: insecure, hosts: map[string]*hostTransport{}}
}

func (t *transport) forHost(host string) *hostTransport {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ht := t.hosts[host]; ht != nil {
		return ht
	}
	ht := &hostTransport{pol: policyFor(host, t.insecure(host), t.verify)}
	cfg := &tls.Config{InsecureSkipVerify: ht.pol.skipVerify}
	if err := loadCerts(t.roots, host, cfg); err != nil {
		ht.err = fmt.Errorf("%s: %w", host, err)
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.TLSClientConfig = cfg
	base.MaxIdleConnsPerHost = 16 // concurrent layer downloads reuse their connections
	ht.rt = base
	t.hosts[host] = ht
	return ht
}

// RoundTrip sends req with its host's settings. A TLS hello answered in
// plain HTTP, where plain HTTP is allowed, is sent again over HTTP, and
// the host's later requests go straight to HTTP. The response names the
// request as it was asked (https): plain HTTP is this host's way of
// serving it, not a redirect for oras-go's auth to refuse.
func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	ht := t.forHost(req.URL.Host)
	if ht.err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, ht.err
	}
	if req.URL.Scheme != "https" || !ht.pol.plainOK {
		return ht.rt.RoundTrip(req)
	}
	if ht.plain.Load() {
		return sendAs(ht.rt, withScheme(req, "http"), req)
	}
	resp, err := ht.rt.RoundTrip(req)
	var rh tls.RecordHeaderError
	if err == nil || !errors.As(err, &rh) || string(rh.RecordHeader[:]) != "HTTP/" {
		return resp, err
	}
	ht.plain.Store(true)
	again := withScheme(req, "http")
	if req.Body != nil {
		if req.GetBody == nil {
			return nil, err
		}
		body, berr := req.GetBody()
		if berr != nil {
			return nil, err
		}
		again.Body = body
	}
	return sendAs(ht.rt, again, req)
}

// sendAs sends sent and answers as if asked had been: the response names
// asked (https) as its request, and a Location on this host (a blob
// upload's, absolute, as the registry builds it from the request it saw)
// keeps https. Otherwise oras-go would see a downgrade, refusing to send
// credentials or to follow the upload; the transport sends the next
// request over HTTP again.
func sendAs(rt http.RoundTripper, sent, asked *http.Request) (*http.Response, error) {
	resp, err := rt.RoundTrip(sent)
	if resp == nil {
		return resp, err
	}
	resp.Request = asked
	if loc, lerr := url.Parse(resp.Header.Get("Location")); lerr == nil && loc.Scheme == "http" && loc.Host == asked.URL.Host {
		loc.Scheme = "https"
		resp.Header.Set("Location", loc.String())
	}
	return resp, err
}

func withScheme(req *http.Request, scheme string) *http.Request {
	r := req.Clone(req.Context())
	r.URL.Scheme = scheme
	return r
}
