package hosts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestPolicy(t *testing.T) {
	no, yes := false, true
	for _, c := range []struct {
		host     string
		insecure bool
		verify   *bool
		want     policy
	}{
		{"registry.example", false, nil, policy{}},
		{"registry.example", true, nil, policy{skipVerify: true, plainOK: true}},
		{"localhost", false, nil, policy{plainOK: true}},
		{"localhost:5000", false, nil, policy{plainOK: true}},
		{"127.0.0.1:5000", false, nil, policy{plainOK: true}},
		{"127.8.9.10", false, nil, policy{plainOK: true}},
		{"[::1]:5000", false, nil, policy{plainOK: true}},
		{"128.0.0.1:5000", false, nil, policy{}},
		{"localhost.example:5000", false, nil, policy{}},
		{"registry.example", false, &no, policy{skipVerify: true, plainOK: true}},
		{"registry.example", true, &yes, policy{}}, // the flag overrides registries.conf
		{"127.0.0.1:5000", false, &yes, policy{}},
	} {
		if got := policyFor(c.host, c.insecure, c.verify); got != c.want {
			t.Errorf("policyFor(%q, insecure=%v, verify=%v) = %+v, want %+v", c.host, c.insecure, c.verify, got, c.want)
		}
	}
}

// testCA is a CA made for one test, able to sign server and client
// certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a PEM certificate and key signed by the CA.
func (ca *testCA) issue(t *testing.T, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func writeFiles(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoadCerts(t *testing.T) {
	ca, other := newTestCA(t), newTestCA(t)
	cert, key := ca.issue(t, x509.ExtKeyUsageClientAuth)
	first, second := t.TempDir(), t.TempDir()
	writeFiles(t, filepath.Join(first, "r.io:5000"), map[string][]byte{"ca.crt": ca.pem, "extra.crt": other.pem, "client.cert": cert, "client.key": key})
	writeFiles(t, filepath.Join(second, "r.io:5000"), map[string][]byte{"ca.crt": []byte("garbage")}) // never read: first wins
	writeFiles(t, filepath.Join(second, "s.io"), map[string][]byte{"ca.crt": ca.pem})

	cfg := &tls.Config{}
	if err := loadCerts([]string{first, second}, "r.io:5000", cfg); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*x509.Certificate{ca.cert, other.cert} {
		if _, err := c.Verify(x509.VerifyOptions{Roots: cfg.RootCAs}); err != nil {
			t.Errorf("the roots do not hold %s: %v", c.Subject, err)
		}
	}
	if len(cfg.Certificates) != 1 {
		t.Errorf("%d client certificates, want 1", len(cfg.Certificates))
	}
	cfg = &tls.Config{}
	if err := loadCerts([]string{first, second}, "s.io", cfg); err != nil || cfg.RootCAs == nil {
		t.Errorf("s.io from the second root: %v, roots %v", err, cfg.RootCAs)
	}
	cfg = &tls.Config{}
	if err := loadCerts([]string{first, second}, "none.io", cfg); err != nil || cfg.RootCAs != nil || cfg.Certificates != nil {
		t.Errorf("a host without certs.d changed the config: %v", err)
	}

	for name, files := range map[string]map[string][]byte{
		"not PEM":        {"ca.crt": []byte("garbage")},
		"key, no cert":   {"client.key": key},
		"cert, no key":   {"client.cert": cert},
		"cert, bad key":  {"client.cert": cert, "client.key": []byte("garbage")},
		"mismatched key": {"client.cert": cert, "client.key": func() []byte { _, k := ca.issue(t, x509.ExtKeyUsageClientAuth); return k }()},
	} {
		root := t.TempDir()
		writeFiles(t, filepath.Join(root, "bad.io"), files)
		if err := loadCerts([]string{root}, "bad.io", &tls.Config{}); err == nil || !strings.Contains(err.Error(), filepath.Join(root, "bad.io")) {
			t.Errorf("%s: error %v, want one naming the file", name, err)
		}
	}
}

func get(t *testing.T, tr http.RoundTripper, rawURL string) (*http.Response, error) {
	t.Helper()
	resp, err := (&http.Client{Transport: tr}).Get(rawURL)
	if err == nil {
		resp.Body.Close()
	}
	return resp, err
}

// TestTransportPlainFallback: a loopback registry speaking plain HTTP is
// reached through an https URL, once the TLS hello is answered in HTTP;
// where plain HTTP is not allowed it is not.
func TestTransportPlainFallback(t *testing.T) {
	hits := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		w.Header().Set("Location", "http://"+r.Host+"/v2/x/blobs/uploads/1") // as the registry builds it
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	never := func(string) bool { return false }

	tr := newTransport(nil, nil, never)
	for range 2 {
		resp, err := get(t, tr, "https://"+host+"/v2/")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("plain loopback registry: %v", err)
		}
		// answered as asked, or oras-go would see a downgrade
		if resp.Request.URL.Scheme != "https" || resp.Header.Get("Location") != "https://"+host+"/v2/x/blobs/uploads/1" {
			t.Errorf("answer to %s with Location %s", resp.Request.URL, resp.Header.Get("Location"))
		}
	}
	if hits != 2 || !tr.forHost(host).plain.Load() {
		t.Errorf("hits %d, plain %v: want 2 and the host remembered as plain", hits, tr.forHost(host).plain.Load())
	}
	yes := true
	if _, err := get(t, newTransport(nil, &yes, never), "https://"+host+"/v2/"); err == nil {
		t.Error("--tls-verify=true reached a plain HTTP registry")
	}
}

// TestTransportTLS: a TLS registry whose CA is unknown fails, in one line
// naming the certs.d path, until the CA is in certs.d, or verification is
// off; a client certificate from certs.d is presented.
func TestTransportTLS(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	ca := newTestCA(t)
	srvCert, srvKey := ca.issue(t, x509.ExtKeyUsageServerAuth)
	clientCert, clientKey := ca.issue(t, x509.ExtKeyUsageClientAuth)
	pair, err := tls.X509KeyPair(srvCert, srvKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pair}, ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the point
	srv.StartTLS()
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "https://")
	never := func(string) bool { return false }

	_, err = get(t, newTransport(certsDirs(), nil, never), srv.URL)
	ex := Explain(err)
	want := filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "containers", "certs.d", host, "ca.crt")
	if !errors.Is(ex, ErrUntrusted) || !strings.Contains(ex.Error(), want) || strings.Contains(ex.Error(), "\n") {
		t.Errorf("unknown CA: %v, want one line naming %s", ex, want)
	}
	no := false
	if _, err := get(t, newTransport(certsDirs(), &no, never), srv.URL); err != nil {
		t.Errorf("--tls-verify=false: %v", err)
	}
	if _, err := get(t, newTransport(certsDirs(), nil, func(string) bool { return true }), srv.URL); err != nil {
		t.Errorf("insecure in registries.conf: %v", err)
	}

	srv.TLS.ClientAuth = tls.RequireAndVerifyClientCert
	writeFiles(t, UserCertsDir(host), map[string][]byte{"ca.crt": ca.pem})
	if _, err := get(t, newTransport(certsDirs(), nil, never), srv.URL); err == nil {
		t.Error("the server took a client without a certificate")
	}
	writeFiles(t, UserCertsDir(host), map[string][]byte{"me.cert": clientCert, "me.key": clientKey})
	if _, err := get(t, newTransport(certsDirs(), nil, never), srv.URL); err != nil {
		t.Errorf("CA and client certificate in certs.d: %v", err)
	}
}

func TestExplain(t *testing.T) {
	refused := &url.Error{Op: "Get", URL: "https://127.0.0.1:1/v2/", Err: &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
	noHost := &url.Error{Op: "Get", URL: "https://nowhere.invalid/v2/", Err: &net.OpError{Op: "dial", Err: &net.DNSError{Name: "nowhere.invalid", Err: "no such host", IsNotFound: true}}}
	other := errors.New("something else")
	for _, c := range []struct {
		err      error
		sentinel error
		want     string
	}{
		{refused, ErrUnreachable, "cannot reach 127.0.0.1:1: connection refused"},
		{noHost, ErrUnreachable, "cannot reach nowhere.invalid: no such host"},
		{other, nil, "something else"},
	} {
		got := Explain(c.err)
		if got.Error() != c.want {
			t.Errorf("Explain(%v) = %q, want %q", c.err, got, c.want)
		}
		if c.sentinel != nil && (!errors.Is(got, c.sentinel) || !errors.Is(got, c.err)) {
			t.Errorf("Explain(%v) does not match its sentinel and cause", c.err)
		}
		if again := Explain(got); again.Error() != got.Error() {
			t.Errorf("Explain twice changed %q to %q", got, again)
		}
	}
	if Explain(nil) != nil {
		t.Error("Explain(nil) is not nil")
	}
}

// TestRetries: a 429 is tried again after its Retry-After through the
// client Resolve hands out; the policy waits as Retry-After says up to
// 20 s, backs off on 5xx, and gives up after five retries.
func TestRetries(t *testing.T) {
	var hits int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits++; hits == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		}
	}))
	defer srv.Close()
	client := newClient(newTransport(nil, nil, func(string) bool { return false }), nil)
	req, _ := http.NewRequest("GET", "https://"+strings.TrimPrefix(srv.URL, "http://")+"/v2/", nil)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || hits != 2 {
		t.Errorf("status %d after %d requests, want 200 after 2", resp.StatusCode, hits)
	}

	answer := func(status int, retryAfter string) *http.Response {
		r := &http.Response{StatusCode: status, Header: http.Header{}}
		if retryAfter != "" {
			r.Header.Set("Retry-After", retryAfter)
		}
		return r
	}
	p := retryPolicy()
	for _, c := range []struct {
		attempt int
		resp    *http.Response
		min     time.Duration
		max     time.Duration
	}{
		{0, answer(429, "7"), 7 * time.Second, 7 * time.Second},
		{0, answer(429, "600"), 20 * time.Second, 20 * time.Second},
		{0, answer(503, ""), 200 * time.Millisecond, 300 * time.Millisecond},
		{3, answer(502, ""), time.Second, 3 * time.Second},
		{4, answer(500, ""), 2 * time.Second, 5 * time.Second},
		{5, answer(503, ""), -1, -1}, // five retries made: give up
		{0, answer(404, ""), -1, -1},
		{0, answer(401, ""), -1, -1},
	} {
		d, err := p.Retry(c.attempt, c.resp, nil)
		if err != nil || d < c.min || d > c.max {
			t.Errorf("attempt %d, status %d, Retry-After %q: wait %v (%v), want %v..%v",
				c.attempt, c.resp.StatusCode, c.resp.Header.Get("Retry-After"), d, err, c.min, c.max)
		}
	}
}
