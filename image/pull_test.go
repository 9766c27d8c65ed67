package image

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// pullSource serves one gzip layer blob and counts what it was asked for.
type pullSource struct {
	blob    []byte
	diffID  digest.Digest
	offsets []int64
	corrupt bool  // flip a byte of what it serves
	failAt  int64 // drop the connection after this many bytes (0: never)
}

func newPullSource(t *testing.T, body string) *pullSource {
	t.Helper()
	tarb := testLayer(t, "f", body)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(tarb)
	zw.Close()
	return &pullSource{blob: gz.Bytes(), diffID: digest.FromBytes(tarb)}
}

func (s *pullSource) layer() PullLayer {
	return PullLayer{
		Desc:   ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(s.blob), Size: int64(len(s.blob))},
		DiffID: s.diffID,
		Fetch: func(_ context.Context, off int64) (io.ReadCloser, error) {
			s.offsets = append(s.offsets, off)
			b := bytes.Clone(s.blob[off:])
			if s.corrupt {
				b[len(b)/2] ^= 0xff
			}
			var r io.Reader = bytes.NewReader(b)
			if s.failAt > 0 {
				r = io.MultiReader(io.LimitReader(r, s.failAt-off), errReaderT{})
			}
			return io.NopCloser(r), nil
		},
	}
}

type errReaderT struct{}

func (errReaderT) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func (s *pullSource) image(t *testing.T) PullImage {
	l := s.layer()
	cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["` + s.diffID.String() + `"]}}`)
	cd := digest.FromBytes(cfg)
	m := []byte(`{"schemaVersion":2,"mediaType":"` + ocispec.MediaTypeImageManifest + `","config":{"mediaType":"` + ocispec.MediaTypeImageConfig + `","digest":"` + cd.String() + `","size":` + strconv.Itoa(len(cfg)) + `},"layers":[{"mediaType":"` + l.Desc.MediaType + `","digest":"` + l.Desc.Digest.String() + `","size":` + strconv.Itoa(len(s.blob)) + `}]}`)
	return PullImage{Name: "registry.test/app:1", RepoDigest: digest.FromString("index"), Manifest: m, ManifestMediaType: ocispec.MediaTypeImageManifest, Config: cfg}
}

func pullOnce(t *testing.T, s *Store, src *pullSource) (LayerOutcome, error) {
	t.Helper()
	p, err := s.BeginPull(PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	out, err := p.Layer(context.Background(), src.layer())
	if err != nil {
		return out, err
	}
	_, err = p.Commit(src.image(t))
	return out, err
}

// TestPullStagesThenCommits: a pull fetches once, commits blob, layer and
// name with the registry's digest; a second pull fetches nothing.
func TestPullStagesThenCommits(t *testing.T) {
	s := openTestStore(t)
	src := newPullSource(t, strings.Repeat("hello ", 1000))
	if out, err := pullOnce(t, s, src); err != nil || out != LayerFetched {
		t.Fatalf("first pull: %v, %v", out, err)
	}
	img, err := s.Resolve("registry.test/app:1")
	if err != nil {
		t.Fatal(err)
	}
	if got := img.RepoDigests["registry.test/app:1"]; got != digest.FromString("index") {
		t.Errorf("repo digest %q, want the registry's", got)
	}
	if b, err := os.ReadFile(filepath.Join(s.LayerDir(src.diffID), "f")); err != nil || !strings.HasPrefix(string(b), "hello") {
		t.Errorf("unpacked layer: %q, %v", b, err)
	}
	if out, err := pullOnce(t, s, src); err != nil || out != LayerExists {
		t.Fatalf("second pull: %v, %v", out, err)
	}
	if len(src.offsets) != 1 {
		t.Errorf("fetched %d times, want once", len(src.offsets))
	}
}

// TestPullResumes: a connection dropped mid-blob leaves the bytes that
// arrived; the next pull asks only for the rest and verifies the whole.
func TestPullResumes(t *testing.T) {
	s := openTestStore(t)
	src := newPullSource(t, strings.Repeat("0123456789abcdef", 1<<14))
	src.failAt = int64(len(src.blob) / 2)
	if _, err := pullOnce(t, s, src); err == nil {
		t.Fatal("pull over a dropped connection succeeded")
	}
	if _, err := s.Resolve("registry.test/app:1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("image visible after a failed pull: %v", err)
	}
	src.failAt = 0
	if _, err := pullOnce(t, s, src); err != nil {
		t.Fatal(err)
	}
	if want := []int64{0, int64(len(src.blob) / 2)}; len(src.offsets) != 2 || src.offsets[1] != want[1] {
		t.Errorf("fetched at offsets %v, want %v", src.offsets, want)
	}
}

// TestPullCorruptLeavesNothing: a blob whose bytes do not match its digest
// fails with ErrVerify and leaves the store (and the pull area's blobs) as
// they were.
func TestPullCorruptLeavesNothing(t *testing.T) {
	s := openTestStore(t)
	other := newPullSource(t, "other")
	if _, err := pullOnce(t, s, other); err != nil {
		t.Fatal(err)
	}
	before := storeSnapshot(t, s.Root())
	src := newPullSource(t, strings.Repeat("data", 5000))
	src.corrupt = true
	_, err := pullOnce(t, s, src)
	if !errors.Is(err, ErrVerify) {
		t.Fatalf("corrupt blob: %v, want a verification error", err)
	}
	if after := storeSnapshot(t, s.Root()); after != before {
		t.Errorf("store changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestBeginPullClearsDeadPulls: what a killed pull left is removed by the
// next, but neither a running pull's area nor one just made.
func TestBeginPullClearsDeadPulls(t *testing.T) {
	s := openTestStore(t)
	alive, err := s.BeginPull(PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer alive.Close()
	old := time.Now().Add(-time.Hour)
	dead, young := "pulls/run-dead", "pulls/run-young" // relative to the store
	for _, d := range []string{dead, young} {
		if err := os.MkdirAll(filepath.Join(s.abs(d), "layer-1"), 0o700); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(s.abs(d), "lock"), nil, 0o600)
	}
	for _, d := range []string{dead, alive.dir} {
		os.Chtimes(s.abs(d), old, old)
	}
	next, err := s.BeginPull(PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	if s.exists(dead) {
		t.Error("a dead pull's area was kept")
	}
	if !s.exists(young) || !s.exists(alive.dir) {
		t.Error("a running (or just made) pull's area was removed")
	}
}

// TestPullDropsDamagedStagedBlob: a blob in the pull area that no longer
// matches its digest fails the pull and is removed, so the next fetches it.
func TestPullDropsDamagedStagedBlob(t *testing.T) {
	s := openTestStore(t)
	src := newPullSource(t, strings.Repeat("x", 3000))
	staged := "pulls/blobs/sha256/" + src.layer().Desc.Digest.Encoded()
	if err := os.MkdirAll(filepath.Dir(s.abs(staged)), 0o700); err != nil {
		t.Fatal(err)
	}
	damaged := bytes.Clone(src.blob)
	damaged[len(damaged)-5] ^= 0xff
	os.WriteFile(s.abs(staged), damaged, 0o600)
	if _, err := pullOnce(t, s, src); !errors.Is(err, ErrVerify) {
		t.Fatalf("damaged staged blob: %v, want ErrVerify", err)
	}
	if s.exists(staged) {
		t.Fatal("the damaged blob stayed")
	}
	if out, err := pullOnce(t, s, src); err != nil || out != LayerFetched {
		t.Fatalf("next pull: %v, %v", out, err)
	}
}

// TestPullAreaBlobsCleared: blobs failed or killed pulls left in
// pulls/blobs go when a day old (at the next pull) or at image prune when
// no pull runs; a partial blob whose fetcher holds its lock never goes.
func TestPullAreaBlobsCleared(t *testing.T) {
	tests := []struct {
		name      string
		partial   bool
		old       bool // older than a day
		locked    bool // its fetcher still runs
		pullAlive bool // some pull is staging while it is cleared
		prune     bool // image prune (else the next pull)
		kept      bool
	}{
		{name: "fresh blob kept by the next pull", kept: true},
		{name: "day-old blob cleared by the next pull", old: true},
		{name: "fresh partial kept by the next pull for resume", partial: true, kept: true},
		{name: "day-old partial of a dead pull cleared by the next pull", partial: true, old: true},
		{name: "day-old partial still being fetched kept", partial: true, old: true, locked: true, kept: true},
		{name: "fresh blob cleared by prune", prune: true},
		{name: "fresh partial cleared by prune", partial: true, prune: true},
		{name: "fresh blob kept by prune while a pull runs", prune: true, pullAlive: true, kept: true},
		{name: "day-old blob cleared by prune while a pull runs", old: true, prune: true, pullAlive: true},
		{name: "partial being fetched kept by prune", partial: true, locked: true, prune: true, kept: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openTestStore(t)
			dir := s.abs("pulls/blobs/sha256")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if tc.pullAlive {
				p, err := s.BeginPull(PullOptions{})
				if err != nil {
					t.Fatal(err)
				}
				defer p.Close()
			}
			path := filepath.Join(dir, digest.FromString(tc.name).Encoded())
			if tc.partial {
				path += ".partial"
			}
			if err := os.WriteFile(path, []byte("some bytes"), 0o600); err != nil {
				t.Fatal(err)
			}
			if tc.old {
				then := time.Now().Add(-25 * time.Hour)
				os.Chtimes(path, then, then)
			}
			if tc.locked {
				f, err := os.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
					t.Fatal(err)
				}
			}
			if tc.prune {
				rep, err := s.Prune(PruneOptions{All: true})
				if err != nil {
					t.Fatal(err)
				}
				if want := int64(len("some bytes")); !tc.kept && rep.Reclaimed < want {
					t.Errorf("prune reclaimed %d bytes, want at least the blob's %d", rep.Reclaimed, want)
				}
			} else {
				p, err := s.BeginPull(PullOptions{})
				if err != nil {
					t.Fatal(err)
				}
				p.Close()
			}
			if _, err := os.Lstat(path); (err == nil) != tc.kept {
				got := err == nil
				t.Errorf("blob kept = %v, want %v", got, tc.kept)
			}
		})
	}
}
