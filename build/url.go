package build

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
)

// addURL downloads an ADD source into the build's scratch directory (no
// store lock is held) and plans it as a file: named after the URL's last
// path element, mode 0600, the server's Last-Modified time, as Docker
// does. With --checksum the content must have that digest.
func (b *builder) addURL(p *copyPlan, rawURL, checksum, destRel string, intoDir bool) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("ADD %s: %w", rawURL, err)
	}
	var want digest.Digest
	if checksum != "" {
		if want, err = digest.Parse(checksum); err != nil {
			return fmt.Errorf("ADD --checksum=%s: %w", checksum, err)
		}
	}
	if b.scratch == "" {
		if b.scratch, err = os.MkdirTemp("", "nook-build-"); err != nil {
			return err
		}
	}
	name := path.Base(u.Path)
	if name == "/" || name == "." || name == "" {
		name = "index.html"
	}
	req, err := http.NewRequestWithContext(b.ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return fmt.Errorf("ADD %s: %w", rawURL, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("ADD %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("ADD %s: the server answered %s", rawURL, resp.Status)
	}
	f, err := os.CreateTemp(b.scratch, "url-")
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	verifier := io.Discard
	if want != "" {
		verifier = want.Verifier()
	}
	if _, err := io.Copy(io.MultiWriter(f, h, verifier), resp.Body); err != nil {
		return fmt.Errorf("ADD %s: downloading: %w", rawURL, err)
	}
	if want != "" && !verifier.(digest.Verifier).Verified() {
		return fmt.Errorf("ADD %s: the content's digest is sha256:%s, not %s (--checksum)", rawURL, hex.EncodeToString(h.Sum(nil)), want)
	}
	mtime := time.Unix(0, 0)
	if lm, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		mtime = lm
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	target := destRel
	if intoDir || strings.HasSuffix(destRel, "/") {
		target = path.Join(destRel, name)
	}
	p.put(target, &entry{hdr: &tar.Header{Typeflag: tar.TypeReg, Mode: 0o600, Size: fi.Size(), ModTime: mtime.Truncate(time.Second)},
		t: dirTree{root: b.scratch}, p: filepath.Base(f.Name())})
	return nil
}
