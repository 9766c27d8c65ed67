package tests

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"nook/internal/testutil"
)

// fullDiskEnv is an env whose store lives on a tmpfs of size bytes: a
// real filesystem that fills up. An unprivileged user can mount one in a
// user and mount namespace of its own (unshare -rm); a sleeping process
// holds them, and nook runs inside through nsenter, as the root of that
// namespace (the user's own id). fill leaves free bytes free on it; view
// is the store's path as the test process sees it.
func fullDiskEnv(t *testing.T, size int64) (e *env, fill func(free int64), view string) {
	t.Helper()
	testutil.RequireUnprivileged(t)
	e = newEnv(t)
	mnt := filepath.Join(e.home, "disk")
	run := filepath.Join(e.home, "run")
	for _, d := range []string{mnt, run} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	e.store = filepath.Join(mnt, "store")
	holder := exec.Command("unshare", "-rm", "sh", "-c",
		fmt.Sprintf("mount -t tmpfs -o size=%d tmpfs %s && echo ready && exec sleep 1000000", size, mnt))
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	holder.Stderr = os.Stderr
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		holder.Process.Kill()
		holder.Wait()
	})
	line, _ := bufio.NewReader(out).ReadString('\n')
	testutil.Require(t, line == "ready\n", "mounting a tmpfs in a user namespace of one's own (unshare -rm)")
	pid := strconv.Itoa(holder.Process.Pid)
	in := []string{"nsenter", "-t", pid, "-U", "-m", "--preserve-credentials", "--"}
	e.wrap = append(in, "env", "XDG_RUNTIME_DIR="+run)
	fill = func(free int64) {
		t.Helper()
		script := fmt.Sprintf(`rm -f %[1]s/fill; n=$(( $(stat -f -c '%%a * %%S' %[1]s) - %[2]d )); [ $n -le 0 ] || fallocate -l $n %[1]s/fill`, mnt, free)
		if b, err := exec.Command(in[0], append(in[1:], "sh", "-c", script)...).CombinedOutput(); err != nil {
			t.Fatalf("filling the disk: %v: %s", err, b)
		}
	}
	return e, fill, filepath.Join("/proc", pid, "root") + e.store
}

// randomTar is a tar of one file of n incompressible bytes, the same
// each time for a seed.
func randomTar(t *testing.T, n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, seed))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return tarOf(t, file("random", string(b)))
}

var noSpace = regexp.MustCompile(`no space left on device writing to (\S+) \((\d+) bytes free\)`)

// TestFullDisk: a full store is named as such by import, load and commit
// (they said "corrupt layer tar: reading data of entry …: no space left on
// device"), in one line with the store and the bytes left, the store as it
// was; rmi on a full disk prints nothing but the error (it printed
// "Untagged:" and "Deleted:" for an image it then failed to remove).
func TestFullDisk(t *testing.T) {
	testutil.Require(t, fuseUsable(), "/dev/fuse is not usable")
	e, fill, view := fullDiskEnv(t, 16<<20)
	e.ok(busyboxRootfs(t), "import", "-", "bb")
	e.ok(tarOf(t, file("small", "s")), "import", "-", "small:1")
	e.ok(nil, "run", "--name", "c", "bb", "sh", "-c", "head -c 1000000 /dev/urandom > /big")
	t.Cleanup(func() { e.nook(nil, "rm", "-f", "c") }) // before the namespace goes

	fill(256 << 10)
	for _, tc := range []struct {
		args  []string
		input []byte
	}{
		{[]string{"import", "-", "big:1"}, randomTar(t, 1<<20, 1)},
		{[]string{"load"}, legacyWithLayer(t, randomTar(t, 1<<20, 2))},
		{[]string{"commit", "c", "committed:1"}, nil},
	} {
		t.Run(tc.args[0], func(t *testing.T) {
			before := snapshot(t, view)
			r := e.nook(tc.input, tc.args...)
			lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
			m := noSpace.FindStringSubmatch(r.stderr)
			if r.code != 125 || len(lines) != 1 || m == nil || m[1] != e.store || strings.Contains(r.stderr, "corrupt") {
				t.Fatalf("%s on a full disk: %s\nwant 125 and one line: no space left on device writing to %s (N bytes free)", tc.args[0], r, e.store)
			}
			if free, _ := strconv.Atoi(m[2]); free > 256<<10 {
				t.Errorf("%d bytes free reported, the disk had at most %d", free, 256<<10)
			}
			if after := snapshot(t, view); after != before {
				t.Errorf("the store changed:\n--- before\n%s\n--- after\n%s", before, after)
			}
		})
	}

	fill(0)
	r := e.nook(nil, "rmi", "small:1")
	if r.code != 125 || r.stdout != "" || !noSpace.MatchString(r.stderr) {
		t.Errorf("rmi on a full disk: %s\nwant 125, nothing on stdout, the full disk named", r)
	}
	r = e.nook(nil, "image", "prune", "-a", "-f")
	if r.code != 125 || r.stdout != "" || !noSpace.MatchString(r.stderr) {
		t.Errorf("image prune -a on a full disk: %s\nwant 125, nothing on stdout, the full disk named", r)
	}
	fill(1 << 20)
	if got := e.ok(nil, "images", "--format", "{{.Repository}}"); !strings.Contains(got, "small") {
		t.Errorf("a failed rmi removed the image: images lists %q", got)
	}
}
