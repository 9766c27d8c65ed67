package build

import (
	"archive/tar"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"nook/internal/compression"
)

// isURL says whether an ADD source is a URL.
func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// isArchive says whether a file is a tar archive, compressed or not.
func isArchive(t tree, p string) bool {
	f, err := t.open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	dec, _, err := compression.Decompress(f)
	if err != nil {
		return false
	}
	defer dec.Close()
	_, err = tar.NewReader(dec).Next()
	return err == nil
}

// unpackInto copies an archive's entries into tw under a.dest; names that
// would leave it are refused.
func (p *copyPlan) unpackInto(tw *tar.Writer, a archiveSource, clamp time.Time) error {
	f, err := a.t.open(a.p)
	if err != nil {
		return err
	}
	defer f.Close()
	dec, _, err := compression.Decompress(f)
	if err != nil {
		return fmt.Errorf("reading archive %s: %w", a.p, err)
	}
	defer dec.Close()
	tr := tar.NewReader(dec)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading archive %s: %w", a.p, err)
		}
		name := cleanRel(hdr.Name)
		if name == "" {
			continue
		}
		if name == ".." || strings.HasPrefix(name, "../") {
			return fmt.Errorf("archive %s: entry %q leaves its directory", a.p, hdr.Name)
		}
		hdr.Name = path.Join(a.dest, name)
		if hdr.Typeflag == tar.TypeDir {
			hdr.Name += "/"
		}
		if hdr.Typeflag == tar.TypeLink {
			ln := cleanRel(hdr.Linkname)
			if ln == ".." || strings.HasPrefix(ln, "../") {
				return fmt.Errorf("archive %s: link %q leaves its directory", a.p, hdr.Linkname)
			}
			hdr.Linkname = path.Join(a.dest, ln)
		}
		hdr.Format = tar.FormatPAX
		hdr.Uname, hdr.Gname = "", ""
		if !clamp.IsZero() && hdr.ModTime.After(clamp) {
			hdr.ModTime = clamp
		}
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}
