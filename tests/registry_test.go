package tests

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"nook/internal/testutil"
)

// testRegistry is Debian's docker-registry (the distribution registry 2.8)
// serving on a free loopback port for one test.
type testRegistry struct {
	Host     string // 127.0.0.1:PORT
	Dir      string // its storage root (docker/registry/v2/... below it)
	LogPath  string // its output: one access-log line per request
	CA       string // PEM of the CA that signed its certificate (secure only)
	User     string // the one htpasswd user (secure only)
	Password string
}

// startRegistry starts a registry for the test and stops it when the test
// ends: plain HTTP, or (secure) TLS with a certificate of a CA made here
// and htpasswd basic auth.
func startRegistry(t *testing.T, secure bool) *testRegistry {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	testutil.Require(t, err == nil, "needs docker-registry (apt-get install docker-registry)")
	dir := t.TempDir()
	reg := &testRegistry{Dir: filepath.Join(dir, "storage"), LogPath: filepath.Join(dir, "registry.log")}
	var extra string
	if secure {
		reg.User, reg.Password = "nook", "s3cret-"+strconv.Itoa(os.Getpid())
		extra = secureConfig(t, dir, reg)
	}
	// A free port is found by binding :0 and closing it; another process
	// may take it before the registry binds, so a failed start is retried.
	for attempt := 0; ; attempt++ {
		reg.Host = freeLoopbackPort(t)
		config := filepath.Join(dir, "config.yml")
		writeFile(t, config, fmt.Sprintf(`version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  secret: nook-test-secret
%s`, reg.Dir, reg.Host, extra))
		cmd, err := runRegistry(bin, config, reg.LogPath)
		if err != nil {
			t.Fatalf("starting docker-registry: %v", err)
		}
		if waitRegistry(reg, cmd) {
			t.Cleanup(func() {
				_ = cmd.Process.Signal(syscall.SIGTERM)
				done := make(chan struct{})
				go func() { _ = cmd.Wait(); close(done) }()
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					_ = cmd.Process.Kill()
					<-done
				}
			})
			return reg
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if attempt == 2 {
			out, _ := os.ReadFile(reg.LogPath)
			t.Fatalf("docker-registry did not answer on %s:\n%s", reg.Host, out)
		}
	}
}

// secureConfig writes the CA, the server's certificate and key and the
// htpasswd file into dir, and returns the config's http.tls and auth part.
func secureConfig(t *testing.T, dir string, reg *testRegistry) string {
	t.Helper()
	htpasswd, err := exec.LookPath("htpasswd")
	testutil.Require(t, err == nil, "needs htpasswd (apt-get install apache2-utils)")
	out, err := exec.Command(htpasswd, "-Bbn", reg.User, reg.Password).Output()
	if err != nil {
		t.Fatalf("htpasswd: %v", err)
	}
	users := filepath.Join(dir, "htpasswd")
	writeFile(t, users, strings.TrimSpace(string(out))+"\n")
	reg.CA = filepath.Join(dir, "ca.crt")
	crt, key := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	makeCertificates(t, reg.CA, crt, key)
	return fmt.Sprintf(`  tls:
    certificate: %s
    key: %s
auth:
  htpasswd:
    realm: nook-test
    path: %s
`, crt, key, users)
}

// makeCertificates writes a fresh CA and a server certificate it signs for
// 127.0.0.1 and localhost.
func makeCertificates(t *testing.T, caPath, crtPath, keyPath string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "nook test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, caPath, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})))
	writeFile(t, crtPath, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER})))
	writeFile(t, keyPath, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
}

func freeLoopbackPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// runRegistry starts docker-registry with its output appended to logPath.
func runRegistry(bin, config, logPath string) (*exec.Cmd, error) {
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	cmd := exec.Command(bin, "serve", config)
	cmd.Stdout, cmd.Stderr = log, log
	return cmd, cmd.Start()
}

// waitRegistry waits until the registry answers /v2/ (200, or 401 when it
// wants credentials), or gives up when it exits or after 20 s.
func waitRegistry(reg *testRegistry, cmd *exec.Cmd) bool {
	client, url := &http.Client{Timeout: 2 * time.Second}, "http://"+reg.Host+"/v2/"
	if reg.CA != "" {
		pool := x509.NewCertPool()
		pem, _ := os.ReadFile(reg.CA)
		pool.AppendCertsFromPEM(pem)
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
		url = "https://" + reg.Host + "/v2/"
	}
	exited := make(chan struct{})
	go func() { _, _ = cmd.Process.Wait(); close(exited) }()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		if resp, err := client.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// registryRequest is one line of the registry's access log.
type registryRequest struct {
	Method, Path string
	Status       int
}

// accessLine matches the combined-log-format line the registry writes for
// each request: `... "GET /v2/x/blobs/sha256:... HTTP/1.1" 200 1234 ...`.
var accessLine = regexp.MustCompile(`"([A-Z]+) (\S+) HTTP/[0-9.]+" ([0-9]{3}) `)

// requests returns every request the registry has logged so far.
func (reg *testRegistry) requests(t *testing.T) []registryRequest {
	t.Helper()
	f, err := os.Open(reg.LogPath)
	if err != nil {
		t.Fatalf("reading the registry's log: %v", err)
	}
	defer f.Close()
	var reqs []registryRequest
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := accessLine.FindStringSubmatch(sc.Text())
		if m == nil || strings.HasPrefix(sc.Text(), "time=") {
			continue
		}
		status, _ := strconv.Atoi(m[3])
		reqs = append(reqs, registryRequest{Method: m[1], Path: m[2], Status: status})
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading the registry's log: %v", err)
	}
	return reqs
}

// countRequests counts the requests with method whose path contains
// pathSubstring ("/blobs/sha256:abc…"); method "" counts every method.
func countRequests(t *testing.T, reg *testRegistry, method, pathSubstring string) int {
	t.Helper()
	n := 0
	for _, r := range reg.requests(t) {
		if (method == "" || r.Method == method) && strings.Contains(r.Path, pathSubstring) {
			n++
		}
	}
	return n
}

// certsDir is where nook looks for the registry's CA in the env's own
// configuration: $XDG_CONFIG_HOME/containers/certs.d/HOST:PORT.
func (e *env) certsDir(reg *testRegistry) string {
	return filepath.Join(e.home, "config", "containers", "certs.d", reg.Host)
}

// trust makes the env's nook trust the registry's CA through certs.d.
func (e *env) trust(reg *testRegistry) {
	e.t.Helper()
	pem, err := os.ReadFile(reg.CA)
	if err != nil {
		e.t.Fatalf("reading the registry's CA: %v", err)
	}
	if err := os.MkdirAll(e.certsDir(reg), 0o755); err != nil {
		e.t.Fatal(err)
	}
	writeFile(e.t, filepath.Join(e.certsDir(reg), "ca.crt"), string(pem))
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRegistryHarness proves the test registries work as the other tests
// assume: the plain one takes anonymous requests, the secure one only
// over TLS with its CA and with credentials, and both log each request.
func TestRegistryHarness(t *testing.T) {
	plain := startRegistry(t, false)
	resp, err := http.Get("http://" + plain.Host + "/v2/")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("plain registry /v2/: %v %v", resp, err)
	}
	resp.Body.Close()
	if n := countRequests(t, plain, "GET", "/v2/"); n < 2 { // the wait's and ours
		t.Errorf("plain registry logged %d GET /v2/, want at least 2", n)
	}

	secure := startRegistry(t, true)
	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(secure.CA)
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for _, c := range []struct {
		user, pass string
		want       int
	}{{"", "", 401}, {secure.User, "wrong", 401}, {secure.User, secure.Password, 200}} {
		req, _ := http.NewRequest("GET", "https://"+secure.Host+"/v2/", nil)
		if c.user != "" {
			req.SetBasicAuth(c.user, c.pass)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("secure registry /v2/ as %q: %v", c.user, err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("secure registry /v2/ as %q/%q: %d, want %d", c.user, c.pass, resp.StatusCode, c.want)
		}
	}
	if _, err := http.Get("https://" + secure.Host + "/v2/"); err == nil {
		t.Error("secure registry answered a client without its CA")
	}
}
