package tests

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"nook/internal/testutil"
)

// writeContext writes a build context: name → content.
func writeContext(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// tarBytes is a plain tar of the given files.
func tarBytes(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

const everyInstruction = `ARG BASE=onb
FROM ${BASE} AS builder
SHELL ["/bin/sh", "-e", "-c"]
RUN <<EOF
echo compiled > /artifact
EOF
RUN <<SCRIPT
#!/bin/sh -e
echo "script ran as $0" > /script-ran
SCRIPT

FROM bb AS unused
RUN echo unused-stage-ran && exit 1

FROM ${BASE}
ARG FLAVOUR=plain
ENV GREETING="hello $FLAVOUR"
WORKDIR /app
COPY --chown=nobody:nobody --chmod=0640 conf/*.txt ./conf/
COPY --from=builder /artifact /opt/artifact
COPY --from=builder /script-ran /script-ran
ADD files.tar /unpacked/
COPY . /ctx/
RUN --mount=type=cache,target=/cache echo run >> /cache/log && wc -l < /cache/log > /cache-count
RUN --mount=type=secret,id=tok grep -qx 's3c.et' /run/secrets/tok && echo secret-ok > /secret-checked
RUN --mount=type=tmpfs,target=/scratch touch /scratch/x && echo "$FLAVOUR" > /flavour && pwd > /run-cwd
RUN --mount=type=bind,from=builder,source=/artifact,target=/mnt/art --mount=type=bind,source=conf,target=/mnt/conf cat /mnt/art /mnt/conf/a.txt > /bound
USER nobody
EXPOSE 8080
VOLUME /data
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s CMD true
LABEL org.example.kind=test
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo $GREETING; id -u; pwd; cat /onbuild-ran"]
`

// TestBuildEveryInstruction builds a multi-stage Dockerfile that uses
// every instruction, then runs the image and checks each one's effect.
func TestBuildEveryInstruction(t *testing.T) {
	e := runEnv(t)
	onb := writeContext(t, map[string]string{"Dockerfile": "FROM bb\nONBUILD RUN echo triggered > /onbuild-ran\n"})
	e.ok(nil, "build", "-q", "-t", "onb", onb)
	ctx := writeContext(t, map[string]string{
		"Dockerfile": everyInstruction, "conf/a.txt": "a\n", "conf/b.txt": "b\n", "conf/c.md": "not a txt\n",
		"skip.log": "ignored\n", ".dockerignore": "*.log\n",
	})
	if err := os.WriteFile(filepath.Join(ctx, "files.tar"), tarBytes(t, map[string]string{"inner/file": "unpacked\n"}), 0o644); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(t.TempDir(), "tok")
	if err := os.WriteFile(secret, []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"build", "-t", "every:1", "--build-arg", "FLAVOUR=fancy", "--secret", "id=tok,src=" + secret, "--label", "from.cli=yes", ctx}
	r := e.nook(nil, args...)
	if r.code != 0 {
		t.Fatalf("build: %s", r)
	}
	for _, want := range []string{"[1/2] STEP 1/", "[2/2] STEP 1/", "COMMIT every:1", "ONBUILD"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("build output lacks %q:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "unused-stage-ran") {
		t.Errorf("a stage the target does not need was built:\n%s", r.stderr)
	}
	if id := strings.TrimSpace(r.stdout); !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(id) {
		t.Errorf("stdout = %q, want the image id alone", r.stdout)
	}

	if got, want := e.ok(nil, "run", "--rm", "every:1"), "hello fancy\n65534\n/app\ntriggered\n"; got != want {
		t.Errorf("running the image: %q, want %q (ENV with ARG, USER, WORKDIR, ENTRYPOINT+CMD, ONBUILD)", got, want)
	}
	check := `stat -c '%U:%G_%a' /app/conf/a.txt /app/conf/b.txt; ls /app/conf; cat /opt/artifact /script-ran /unpacked/inner/file; ls -a /ctx; cat /cache-count /secret-checked /flavour /run-cwd /bound; cat /run/secrets/tok /mnt/art /mnt/conf/a.txt /scratch/x 2>/dev/null | wc -c`
	got := e.ok(nil, "run", "--rm", "--entrypoint", "", "every:1", "sh", "-c", check)
	wantLines := []string{
		"nobody:nobody_640", "nobody:nobody_640", // --chown by names, --chmod
		"a.txt", "b.txt", // the glob left c.md out
		"compiled", "script", "ran", "as", "/dev/pipes/SCRIPT", "unpacked", // COPY --from a stage (a heredoc with #! ran as a file), ADD unpacked a tar
		".", "..", ".dockerignore", "Dockerfile", "conf", "files.tar", // skip.log ignored
		"1", "secret-ok", "fancy", "/app", "compiled", "a", // RUN --mount cache, secret, tmpfs, bind from a stage and the context
		"0", // no mount's content stays in a layer
	}
	if lines := strings.Fields(got); strings.Join(lines, "|") != strings.Join(wantLines, "|") {
		t.Errorf("inside the image:\n%s\nwant (one per line):\n%s", got, strings.Join(wantLines, "\n"))
	}

	c := imageConfig(t, e, "every:1").Config
	checks := []struct {
		what      string
		got, want any
	}{
		{"User", c.User, "nobody"},
		{"WorkingDir", c.WorkingDir, "/app"},
		{"Entrypoint", c.Entrypoint, []string{"/bin/sh", "-c"}},
		{"Labels", c.Labels, map[string]string{"org.example.kind": "test", "from.cli": "yes"}},
		{"ExposedPorts", c.ExposedPorts, map[string]struct{}{"8080/tcp": {}}},
		{"Volumes", c.Volumes, map[string]struct{}{"/data": {}}},
		{"StopSignal", c.StopSignal, "SIGINT"},
		{"Healthcheck", c.Healthcheck["Test"], []string{"CMD-SHELL", "true"}},
	}
	for _, ck := range checks {
		gb, _ := json.Marshal(ck.got)
		wb, _ := json.Marshal(ck.want)
		if string(gb) != string(wb) {
			t.Errorf("config %s = %s, want %s", ck.what, gb, wb)
		}
	}
	if !containsEnv(c.Env, "GREETING=hello fancy") || containsEnvKey(c.Env, "FLAVOUR") {
		t.Errorf("config Env = %v: want GREETING set and no ARG stored", c.Env)
	}

	// The secret reached RUN and no layer of the store.
	blobs, _ := filepath.Glob(filepath.Join(e.store, "blobs", "sha256", "*"))
	for _, b := range blobs {
		if data, err := os.ReadFile(b); err == nil && bytes.Contains(data, []byte("s3cret")) {
			t.Errorf("blob %s holds the secret", filepath.Base(b))
		}
	}

	// The cache mount keeps its content into the next build.
	e.ok(nil, append([]string{"build", "-q", "--no-cache"}, args[1:]...)...)
	if got := strings.TrimSpace(e.ok(nil, "run", "--rm", "--entrypoint", "", "every:1", "cat", "/cache-count")); got != "2" {
		t.Errorf("cache mount lines after two builds = %q, want 2", got)
	}
	if n := e.containerDirs(); n != 0 {
		t.Errorf("%d build containers left behind", n)
	}
}

// rawConfig is an image's config blob as stored, Docker's fields
// (Healthcheck) included.
type rawConfig struct {
	Config struct {
		User, WorkingDir, StopSignal string
		Env, Entrypoint, Cmd         []string
		Labels                       map[string]string
		ExposedPorts, Volumes        map[string]struct{}
		Healthcheck                  map[string]any
	} `json:"config"`
	Created string `json:"created"`
}

func imageConfig(t *testing.T, e *env, ref string) rawConfig {
	t.Helper()
	id := strings.TrimSpace(e.ok(nil, "inspect", "-f", "{{.Id}}", ref))
	b, err := os.ReadFile(filepath.Join(e.store, "blobs", "sha256", strings.TrimPrefix(id, "sha256:")))
	if err != nil {
		t.Fatal(err)
	}
	var c rawConfig
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func containsEnv(env []string, kv string) bool {
	for _, e := range env {
		if e == kv {
			return true
		}
	}
	return false
}

func containsEnvKey(env []string, k string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, k+"=") {
			return true
		}
	}
	return false
}

// TestBuildCache: a rebuild takes every step from the cache and gives the
// same image; a changed time alone changes nothing; a changed source
// misses from its step on, not before; prune empties the cache.
func TestBuildCache(t *testing.T) {
	e := runEnv(t)
	ctx := writeContext(t, map[string]string{
		"Dockerfile": "FROM bb\nRUN echo one > /one\nCOPY a.txt /a.txt\nRUN echo two > /two\nCOPY b.txt /b.txt\nCMD [\"cat\", \"/b.txt\"]\n",
		"a.txt":      "a\n", "b.txt": "b\n",
	})
	build := func() (string, int) {
		t.Helper()
		r := e.nook(nil, "build", "-t", "cached", ctx)
		if r.code != 0 {
			t.Fatalf("build: %s", r)
		}
		return strings.TrimSpace(r.stdout), strings.Count(r.stderr, "--> Using cache")
	}
	first, hits := build()
	if hits != 0 {
		t.Fatalf("first build used the cache %d times", hits)
	}
	second, hits := build()
	if hits != 4 || second != first {
		t.Errorf("rebuild: %d steps cached (want 4), id %s (want %s)", hits, second, first)
	}
	old := time.Unix(1e9, 0)
	if err := os.Chtimes(filepath.Join(ctx, "a.txt"), old, old); err != nil {
		t.Fatal(err)
	}
	if _, hits := build(); hits != 4 {
		t.Errorf("after touching a.txt: %d steps cached, want 4 (the cache hashes content, not times)", hits)
	}
	if err := os.WriteFile(filepath.Join(ctx, "b.txt"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	third, hits := build()
	if hits != 3 || third == first {
		t.Errorf("after changing b.txt: %d steps cached (want the 3 before it), same id: %v", hits, third == first)
	}
	if got := e.ok(nil, "run", "--rm", "cached"); got != "changed\n" {
		t.Errorf("the rebuilt image runs %q", got)
	}
	if r := e.nook(nil, "build", "--no-cache", "-t", "cached", ctx); r.code != 0 || strings.Contains(r.stderr, "Using cache") {
		t.Errorf("--no-cache: %s", r)
	}
	// The cache is ordinary store content: hidden from images, shown by -a, gone with prune.
	all, plain := strings.Fields(e.ok(nil, "images", "-a", "-q")), strings.Fields(e.ok(nil, "images", "-q"))
	if len(all) <= len(plain) {
		t.Errorf("images -a lists %d, images %d: want the cached steps in -a only", len(all), len(plain))
	}
	// prune keeps the steps the tagged image is made of, not the others.
	e.ok(nil, "image", "prune", "-f")
	if _, hits := build(); hits != 4 {
		t.Errorf("after image prune: %d steps cached, want the 4 the tagged image uses", hits)
	}
	os.WriteFile(filepath.Join(ctx, "b.txt"), []byte("b\n"), 0o644)
	if _, hits := build(); hits != 3 {
		t.Errorf("after image prune, the old b.txt again: %d steps cached, want 3 (its COPY was pruned)", hits)
	}
	e.ok(nil, "rmi", "cached")
	e.ok(nil, "image", "prune", "-f")
	if _, hits := build(); hits != 0 {
		t.Errorf("after rmi and image prune: %d steps cached, want 0", hits)
	}
}

// TestBuildReproducible: with SOURCE_DATE_EPOCH two stores build the same
// image id, and new files carry that time.
func TestBuildReproducible(t *testing.T) {
	ctx := writeContext(t, map[string]string{
		"Dockerfile": "FROM bb\nCOPY a.txt /a.txt\nRUN echo run > /ran && mkdir /made\nENV X=1\n",
		"a.txt":      "a\n",
	})
	var ids []string
	for range 2 {
		e := runEnv(t)
		e.extraEnv = append(e.extraEnv, "SOURCE_DATE_EPOCH=1700000000")
		e.ok(busyboxRootfs(t), "import", "-", "bb") // the same base in both stores
		id := strings.TrimSpace(e.ok(nil, "build", "-q", "-t", "repro", ctx))
		ids = append(ids, id)
		if got := e.ok(nil, "run", "--rm", "repro", "stat", "-c", "%Y", "/a.txt", "/ran", "/made"); got != "1700000000\n1700000000\n1700000000\n" {
			t.Errorf("mtimes in the image: %q, want the epoch", got)
		}
		if c := imageConfig(t, e, "repro"); c.Created != "2023-11-14T22:13:20Z" {
			t.Errorf("config created = %s, want the epoch", c.Created)
		}
		if again := strings.TrimSpace(e.ok(nil, "build", "-q", "--no-cache", "--timestamp", "1700000000", ctx)); again != id {
			t.Errorf("--timestamp without the cache gave %s, want %s", again, id)
		}
	}
	if ids[0] != ids[1] {
		t.Errorf("two stores built %s and %s", ids[0], ids[1])
	}
}

// TestBuildErrors: a syntax error names the file and line; a failing RUN
// names the step, command and status and leaves no image nor container.
func TestBuildErrors(t *testing.T) {
	e := runEnv(t)
	cases := []struct {
		name, dockerfile string
		code             int
		want             []string
	}{
		{"syntax", "FROM bb\nRUN true\nCOPY onlyone\n", 125, []string{"Dockerfile:3", "COPY requires at least two arguments"}},
		{"unknown instruction", "FROM bb\nFOO bar\n", 125, []string{"Dockerfile:2", "unknown instruction: FOO"}},
		{"unknown flag", "FROM bb\nCOPY --bogus=1 a b\n", 125, []string{"Dockerfile:2", "bogus"}},
		{"failing RUN", "FROM bb\nRUN echo first\nRUN echo oops && exit 3\n", 1, []string{"STEP 3/3", "echo oops && exit 3", "exit status 3"}},
		{"missing source", "FROM bb\nCOPY nothere /x\n", 125, []string{"nothere", "no such file"}},
		{"outside the context", "FROM bb\nCOPY ../../etc/passwd /x\n", 125, []string{"outside the build context"}},
		{"symlink out of the context", "FROM bb\nCOPY link/passwd /x\n", 125, []string{"link/passwd"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := writeContext(t, map[string]string{"Dockerfile": c.dockerfile})
			if err := os.Symlink("/etc", filepath.Join(ctx, "link")); err != nil {
				t.Fatal(err)
			}
			r := e.nook(nil, "build", "-t", "broken", ctx)
			if r.code != c.code {
				t.Errorf("exit %d, want %d: %s", r.code, c.code, r)
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q: %s", w, r.stderr)
				}
			}
			if strings.Contains(e.ok(nil, "images"), "broken") {
				t.Error("a failed build tagged an image")
			}
			if n := e.containerDirs(); n != 0 {
				t.Errorf("%d build containers left behind", n)
			}
		})
	}
}

// TestBuildDebian builds on a real Debian 12 root (made by tests/run.sh
// with mmdebstrap from Debian's packages, NOOK_TEST_DEBIAN): apt-get
// installs a package and useradd makes a user whose files other rootless
// builders fail to chown, then the image runs as that user.
func TestBuildDebian(t *testing.T) {
	base := os.Getenv("NOOK_TEST_DEBIAN")
	testutil.Require(t, base != "", "NOOK_TEST_DEBIAN (a Debian 12 root tar from mmdebstrap, made by tests/run.sh) is not set")
	e := runEnv(t)
	f, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	e.ok(f, "import", "-", "debian12")
	ctx := writeContext(t, map[string]string{"Dockerfile": `FROM debian12
RUN apt-get update && apt-get install -y --no-install-recommends hello && useradd -m -u 1234 builder
USER builder
WORKDIR /home/builder
RUN touch mine
CMD ["hello"]
`})
	r := e.nook(nil, "build", "-t", "deb", ctx)
	if r.code != 0 {
		t.Fatalf("build: %s", r)
	}
	if got := e.ok(nil, "run", "--rm", "deb"); got != "Hello, world!\n" {
		t.Errorf("hello printed %q", got)
	}
	got := e.ok(nil, "run", "--rm", "deb", "sh", "-c", "id -un; stat -c '%U:%G' /home/builder /home/builder/mine /home/builder/.bashrc")
	if want := "builder\nbuilder:builder\nbuilder:builder\nbuilder:builder\n"; got != want {
		t.Errorf("users and owners in the image: %q, want %q", got, want)
	}
}

// TestBuildAddURL: ADD fetches a URL (a server of the test's own on
// loopback) and checks --checksum; a wrong checksum fails the build.
func TestBuildAddURL(t *testing.T) {
	e := runEnv(t)
	body := "fetched over http\n"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Last-Modified", "Tue, 14 Nov 2023 22:13:20 GMT")
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	sum := sha256.Sum256([]byte(body))
	good := fmt.Sprintf("FROM bb\nADD --checksum=sha256:%x %s/files/data.txt /srv/\n", sum, srv.URL)
	e.ok(nil, "build", "-q", "-t", "fetched", writeContext(t, map[string]string{"Dockerfile": good}))
	if got := e.ok(nil, "run", "--rm", "fetched", "sh", "-c", "cat /srv/data.txt; stat -c '%a %Y' /srv/data.txt"); got != body+"600 1700000000\n" {
		t.Errorf("the fetched file: %q", got)
	}
	bad := fmt.Sprintf("FROM bb\nADD --checksum=sha256:%064x %s/files/data.txt /srv/\n", 0, srv.URL)
	r := e.nook(nil, "build", "-q", "-t", "badsum", writeContext(t, map[string]string{"Dockerfile": bad}))
	if r.code == 0 || !strings.Contains(r.stderr, "--checksum") {
		t.Errorf("a wrong checksum: %s", r)
	}
}

// TestBuildPullsBase: FROM an image the store lacks pulls it from the
// registry (a loopback one); COPY --from an image does too; --pull pulls
// again a base the store has.
func TestBuildPullsBase(t *testing.T) {
	reg := startRegistry(t, false)
	pusher := runEnv(t)
	ref := reg.Host + "/lab/base:1"
	pusher.ok(nil, "tag", "bb", ref)
	pusher.push(ref)

	e := runEnv(t)
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM " + ref + "\nCOPY --from=" + ref + " /etc/passwd /copied\nRUN cat /copied > /dev/null\n"})
	r := e.nook(nil, "build", "-t", "pulled", ctx)
	if r.code != 0 || !strings.Contains(r.stderr, "Pulling "+ref) {
		t.Fatalf("build from an absent base: %s", r)
	}
	if !strings.Contains(e.ok(nil, "images"), reg.Host+"/lab/base") {
		t.Error("the base is not in the store after the build")
	}
	if r := e.nook(nil, "build", "--pull", "-t", "pulled", ctx); r.code != 0 || !strings.Contains(r.stderr, "Pulling "+ref) {
		t.Errorf("--pull did not pull the base again: %s", r)
	}
}

// TestBuildCopyFlags: COPY --exclude leaves files out, --parents keeps
// the source's directories, --link builds the same; the context may come
// as a tar on stdin and the Dockerfile from -f.
func TestBuildCopyFlags(t *testing.T) {
	e := runEnv(t)
	files := map[string]string{
		"src/a/one.txt": "1\n", "src/a/skip.tmp": "x\n", "src/b/two.txt": "2\n",
		"build.Dockerfile": `FROM bb
COPY --exclude=**/*.tmp src/ /plain/
COPY --parents src/*/two.txt /kept/
COPY --link src/a/one.txt /linked.txt
WORKDIR /made/by/workdir
`,
	}
	ctx := writeContext(t, files)
	e.ok(nil, "build", "-q", "-f", filepath.Join(ctx, "build.Dockerfile"), "-t", "flags", ctx)
	got := e.ok(nil, "run", "--rm", "-w", "/", "flags", "sh", "-c", "ls /plain; ls /plain/a; ls /kept/src/b; cat /linked.txt; stat -c '%U %a' /made/by/workdir")
	if want := "a\nb\none.txt\ntwo.txt\n1\nroot 755\n"; got != want {
		t.Errorf("after COPY --exclude, --parents, --link and WORKDIR:\n%s\nwant:\n%s", got, want)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range map[string]string{"Dockerfile": "FROM bb\nCOPY in.txt /in.txt\n", "in.txt": "from stdin\n"} {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
	}
	tw.Close()
	e.ok(buf.Bytes(), "build", "-q", "-t", "stdin", "-")
	if got := e.ok(nil, "run", "--rm", "stdin", "cat", "/in.txt"); got != "from stdin\n" {
		t.Errorf("context from stdin: %q", got)
	}
}

// TestBuildInterrupted: ^C during a RUN whose command ignores it ends the
// build, tags nothing and leaves no build container.
func TestBuildInterrupted(t *testing.T) {
	e := runEnv(t)
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM bb\nRUN trap '' INT TERM; echo started; sleep 600\n"})
	cmd := exec.Command(nookBin, "build", "-t", "interrupted", ctx)
	cmd.Env = append(os.Environ(), "NOOK_ROOT="+e.store)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	var seen string
	for !strings.Contains(seen, "started") {
		n, err := stderr.Read(buf)
		if err != nil {
			t.Fatalf("the build ended before its RUN started: %q", seen)
		}
		seen += string(buf[:n])
	}
	start := time.Now()
	cmd.Process.Signal(os.Interrupt)
	io.Copy(io.Discard, stderr)
	err = cmd.Wait()
	if err == nil {
		t.Error("an interrupted build succeeded")
	}
	if d := time.Since(start); d > 5*time.Minute {
		t.Errorf("the build stopped after %v: its RUN (sleep 600) was not killed", d) // a liveness bound, not speed
	}
	if strings.Contains(e.ok(nil, "images"), "interrupted") {
		t.Error("an interrupted build tagged an image")
	}
	if n := e.containerDirs(); n != 0 {
		t.Errorf("%d build containers left behind", n)
	}
}
