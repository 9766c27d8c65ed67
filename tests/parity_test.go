package tests

import (
	"archive/tar"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"nook/internal/testutil"
)

// Docker's behaviour where a Docker user's hands already go (issue 15):
// one test per item, each failing on the behaviour it replaced.

// TestCommandAfterImage: everything after run's and create's image, and
// after exec's container, is the container's command, even flags nook
// knows (-w, --help, --version), as Docker reads it.
func TestCommandAfterImage(t *testing.T) {
	e := runEnv(t)
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		// -w is the command: not found, and /x is no working directory.
		{[]string{"run", "--rm", "bb", "-w", "/x", "pwd"}, 127, "", `"-w"`},
		{[]string{"run", "--rm", "-w", "/tmp", "bb", "pwd"}, 0, "/tmp\n", ""},
		{[]string{"run", "--rm", "--entrypoint", "echo", "bb", "--version", "-w", "/x"}, 0, "--version -w /x\n", ""},
		{[]string{"run", "--rm", "bb", "--help"}, 127, "", `"--help"`},
		{[]string{"run", "--rm", "bb", "sh", "-c", "echo $0 $1", "-w", "--rm"}, 0, "-w --rm\n", ""},
	} {
		r := e.nook(nil, tc.args...)
		if r.code != tc.code || r.stdout != tc.stdout || !strings.Contains(r.stderr, tc.stderr) {
			t.Errorf("nook %s:\n%s\nwant exit %d, stdout %q, stderr containing %q",
				strings.Join(tc.args, " "), r, tc.code, tc.stdout, tc.stderr)
		}
	}

	e.ok(nil, "create", "--name", "later", "--entrypoint", "echo", "bb", "--help", "-d")
	if got := e.ok(nil, "start", "-a", "later"); got != "--help -d\n" {
		t.Errorf("create's command after the image: start -a printed %q, want %q", got, "--help -d\n")
	}

	e.ok(nil, "run", "-d", "--name", "box", "bb", "sleep", "1000")
	if got := e.ok(nil, "exec", "box", "echo", "-w", "/x", "--help"); got != "-w /x --help\n" {
		t.Errorf("exec box echo -w /x --help printed %q", got)
	}
	if r := e.nook(nil, "exec", "box", "-w", "/", "pwd"); r.code != 127 || r.stdout != "" {
		t.Errorf("exec box -w / pwd: want -w as the command (exit 127):\n%s", r)
	}
}

// TestChangeNotSplit: commit -c and import -c take each value whole, so
// JSON forms with commas work in both (commit split them at commas).
func TestChangeNotSplit(t *testing.T) {
	e := runEnv(t)
	e.ok(nil, "run", "--name", "c1", "bb", "sh", "-c", "echo a,b > /a")
	changes := []string{"-c", `CMD ["cat","/a"]`, "-c", `LABEL x="1,2"`}
	e.ok(nil, append(append([]string{"commit"}, changes...), "c1", "committed")...)
	e.ok(busyboxRootfs(t), append(append([]string{"import"}, changes...), "-", "imported")...)
	for _, ref := range []string{"committed", "imported"} {
		cfg := e.inspectImage(ref)["Config"].(map[string]any)
		if got := fmt.Sprint(cfg["Cmd"], cfg["Labels"]); got != "[cat /a] map[x:1,2]" {
			t.Errorf("%s: Cmd and Labels %s, want [cat /a] map[x:1,2]", ref, got)
		}
	}
	if got := e.ok(nil, "run", "--rm", "committed"); got != "a,b\n" {
		t.Errorf("the committed image's CMD printed %q", got)
	}
}

// TestRelativeVolume: -v ./src:/x and --mount with a relative source bind
// the directory relative to nook's working directory (Docker ≥ 23); a
// source without "." names a volume, not the host directory.
func TestRelativeVolume(t *testing.T) {
	e := runEnv(t)
	e.dir = t.TempDir()
	if err := os.MkdirAll(filepath.Join(e.dir, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "src", "f"), []byte("host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, flags := range [][]string{
		{"-v", "./src:/x"},
		{"-v", ".:/x:ro", "-w", "/x/src"},
		{"--mount", "type=bind,source=src,target=/x"},
	} {
		args := append(append([]string{"run", "--rm"}, flags...), "bb", "sh", "-c", "cat /x/f 2>/dev/null || cat f")
		if got := e.nook(nil, args...); got.code != 0 || got.stdout != "host\n" {
			t.Errorf("nook %s:\n%s", strings.Join(args, " "), got)
		}
	}
	if r := e.nook(nil, "run", "--rm", "-v", "src:/x", "bb", "ls", "/x"); r.code != 0 || r.stdout != "" {
		t.Errorf("-v src:/x (a volume's name in Docker) showed the host's src: %s", r)
	}
}

// TestFormatTable: --format 'table …' prints a header row and `\t` is a
// tab, for ps, images and stats; stats takes a template; top takes ps's
// options and shows only the container's processes.
func TestFormatTable(t *testing.T) {
	e := runEnv(t)
	e.ok(nil, "run", "-d", "--name", "box", "bb", "sleep", "1000")
	lines := func(out string) [][]string {
		var ls [][]string
		for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
			ls = append(ls, strings.Fields(l))
		}
		return ls
	}
	for _, tc := range []struct {
		args []string
		want string // the lines' fields, as fmt prints them
	}{
		{[]string{"ps", "--format", `table {{.Names}}\t{{.State}}`}, "[[NAMES STATE] [box running]]"},
		{[]string{"images", "--format", `table {{.Repository}}\t{{.Tag}}`}, "[[REPOSITORY TAG] [bb latest]]"},
		{[]string{"stats", "--no-stream", "--format", `table {{.Name}}\t{{.PIDs}}`}, "[[NAME PIDS] [box 1]]"},
		{[]string{"stats", "--no-stream", "--format", `{{.Name}}:{{.PIDs}}`}, "[[box:1]]"},
	} {
		out := e.ok(nil, tc.args...)
		if got := fmt.Sprint(lines(out)); got != tc.want || strings.Contains(out, `\t`) {
			t.Errorf("nook %s printed\n%s\nwant lines %s", strings.Join(tc.args, " "), out, tc.want)
		}
	}
	if got := e.ok(nil, "ps", "--format", `{{.Names}}\t{{.State}}`); got != "box\trunning\n" {
		t.Errorf("ps --format with \\t printed %q, want a tab", got)
	}

	self := strconv.Itoa(os.Getpid())
	for _, tc := range []struct {
		opts   []string
		titles string
	}{
		{[]string{"aux"}, "[USER PID %CPU %MEM VSZ RSS TTY STAT START TIME COMMAND]"},
		{[]string{"-eo", "pid,user,args"}, "[PID USER COMMAND]"},
		{[]string{"-ef"}, "[UID PID PPID C STIME TTY TIME CMD]"},
	} {
		out := e.ok(nil, append([]string{"top", "box"}, tc.opts...)...)
		ls := lines(out)
		if fmt.Sprint(ls[0]) != tc.titles || len(ls) != 2 || !strings.HasSuffix(out, " sleep 1000\n") {
			t.Errorf("top box %s printed\n%s\nwant titles %s and one process, sleep 1000", strings.Join(tc.opts, " "), out, tc.titles)
		}
		if strings.Contains(out, " "+self+" ") {
			t.Errorf("top box %s lists the test's own process %s:\n%s", strings.Join(tc.opts, " "), self, out)
		}
	}
	if r := e.nook(nil, "top", "box", "-o", "user,args"); r.code != 125 || !strings.Contains(r.stderr, "PID") {
		t.Errorf("top with ps options that leave out PID: %s", r)
	}
}

// TestRmiOneName: an image reached by several names, through one manifest
// or two (the same config loaded with its layers compressed), loses only
// the name rmi gives; rm -f and rmi -f of what does not exist exit 0.
func TestRmiOneName(t *testing.T) {
	_, err := exec.LookPath("skopeo")
	testutil.Require(t, err == nil, "skopeo not installed (apt-get install skopeo)")
	e := runEnv(t)
	e.ok(nil, "tag", "bb", "bb2")
	// A second manifest of the same image: gzip layers, its own name.
	archive := filepath.Join(e.home, "gz.tar")
	if out, err := exec.Command("skopeo", "copy", "-q", "--dest-compress",
		"oci:"+e.store+":docker.io/library/bb:latest", "oci-archive:"+archive+":other:1").CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	e.ok(nil, "load", "-i", archive)
	id := strings.TrimSpace(e.ok(nil, "inspect", "-f", "{{.Id}}", "bb"))
	if got := strings.TrimSpace(e.ok(nil, "inspect", "-f", "{{.Id}}", "other:1")); got != id {
		t.Fatalf("the loaded copy has id %s, want %s", got, id)
	}
	if r := e.nook(nil, "rmi", id); r.code != 125 || !strings.Contains(r.stderr, "multiple repositories") {
		t.Errorf("rmi of an id with three names: want a refusal naming its repositories:\n%s", r)
	}
	for _, name := range []string{"other:1", "bb2"} {
		if got := e.ok(nil, "rmi", name); got != "Untagged: "+name+":latest\n" && got != "Untagged: "+name+"\n" {
			t.Errorf("rmi %s printed %q, want only its Untagged line", name, got)
		}
	}
	if got := e.ok(nil, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}"); got != "bb:latest "+id[7:19]+"\n" {
		t.Errorf("after removing the other names, images lists:\n%s", got)
	}
	if got := e.ok(nil, "run", "--rm", "bb", "echo", "alive"); got != "alive\n" {
		t.Errorf("bb after rmi of its other names: %q", got)
	}

	e.ok(nil, "create", "--name", "c1", "bb")
	for _, args := range [][]string{{"rm", "-f", "nosuch"}, {"rmi", "-f", "nosuch:1"}, {"rm", "-f", "nosuch", "c1"}} {
		if r := e.nook(nil, args...); r.code != 0 || r.stderr != "" {
			t.Errorf("nook %s: want exit 0 and silence:\n%s", strings.Join(args, " "), r)
		}
	}
	if r := e.nook(nil, "ps", "-aq"); r.stdout != "" {
		t.Errorf("rm -f nosuch c1 left c1: %s", r)
	}
	for _, args := range [][]string{{"rm", "nosuch"}, {"rmi", "nosuch:1"}} {
		if r := e.nook(nil, args...); r.code != 125 {
			t.Errorf("nook %s without -f: want 125:\n%s", strings.Join(args, " "), r)
		}
	}
}

// TestStartAINotATerminal: start -ai of a -t container with stdin that is
// not a terminal refuses at once, as Docker does, and leaves it created.
func TestStartAINotATerminal(t *testing.T) {
	e := runEnv(t)
	e.ok(nil, "create", "-it", "--name", "t1", "bb", "sh")
	r := e.nook([]byte("echo typed; exit 3\n"), "start", "-ai", "t1")
	if r.code != 125 || r.stdout != "" || !strings.Contains(r.stderr, "the input device is not a TTY") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("start -ai of a -t container from a pipe: want one line, the input device is not a TTY, exit 125:\n%s", r)
	}
	if got := e.state("t1"); got != "created" {
		t.Errorf("after the refusal the container is %q, want created", got)
	}
	// Without -t, or without -i, a pipe is fine.
	e.ok(nil, "create", "-i", "--name", "i1", "bb", "sh")
	if got := e.ok([]byte("echo typed; exit 0\n"), "start", "-ai", "i1"); got != "typed\n" {
		t.Errorf("start -ai of a -i container printed %q", got)
	}
}

// TestInspectShape: inspect has the fields Docker users' templates read:
// a container's NetworkSettings.IPAddress and HostConfig.RestartPolicy.Name
// (empty, not <no value>), Config.Env with the PATH it runs with; an
// image's LastTagTime once tagged (not after a load, as Docker), and
// RepoDigests empty for an image no registry has seen.
func TestInspectShape(t *testing.T) {
	e := runEnv(t)
	e.ok(nil, "create", "--name", "c1", "bb")
	const path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	got := e.ok(nil, "inspect", "-f", `{{.NetworkSettings.IPAddress}}|{{.HostConfig.RestartPolicy.Name}}|{{json .Config.Env}}`, "c1")
	if want := `||["` + path + `","FROM_IMAGE=yes",`; !strings.HasPrefix(got, want) {
		t.Errorf("container inspect printed %q, want it to start %q", got, want)
	}
	e.ok(busyboxRootfs(t), "import", "-c", "ENV PATH=/bin", "-", "haspath")
	e.ok(nil, "create", "--name", "c2", "haspath", "true")
	if got := e.ok(nil, "inspect", "-f", `{{json .Config.Env}}`, "c2"); !strings.HasPrefix(got, `["PATH=/bin","HOSTNAME=`) {
		t.Errorf("an image's own PATH: Config.Env %s", got)
	}

	const zero = "0001-01-01T00:00:00Z"
	format := `{{.Metadata.LastTagTime}} {{json .RepoDigests}}`
	imported := strings.Fields(e.ok(nil, "image", "inspect", "-f", format, "bb"))
	if imported[0] == zero || imported[1] != "[]" {
		t.Errorf("an imported image: LastTagTime %s, RepoDigests %s; want a time and []", imported[0], imported[1])
	}
	e.ok(nil, "tag", "bb", "bb2")
	tagged := strings.Fields(e.ok(nil, "image", "inspect", "-f", format, "bb2"))
	t0, err0 := time.Parse(time.RFC3339Nano, imported[0])
	t1, err1 := time.Parse(time.RFC3339Nano, tagged[0])
	if err0 != nil || err1 != nil || !t1.After(t0) || tagged[1] != "[]" {
		t.Errorf("after tag: LastTagTime %s (imported at %s), RepoDigests %s", tagged[0], imported[0], tagged[1])
	}
	archive := filepath.Join(e.home, "bb.tar")
	e.ok(nil, "save", "-o", archive, "bb")
	n := newEnv(t)
	n.ok(nil, "load", "-i", archive)
	if got := n.ok(nil, "image", "inspect", "-f", format, "bb"); got != zero+" []\n" {
		t.Errorf("a loaded image: %q, want Docker's zero LastTagTime and no repo digests", got)
	}
}

// TestHistoryVersionRename: the verbs history, version and rename, in
// Docker's shapes.
func TestHistoryVersionRename(t *testing.T) {
	e := runEnv(t)
	e.ok(nil, "run", "--name", "c1", "bb", "sh", "-c", "echo data > /new")
	id := strings.TrimSpace(e.ok(nil, "commit", "-m", "the step", "-c", "ENV X=1", "c1", "committed"))
	out := e.ok(nil, "history", "--format", "{{.ID}}|{{.Size}}|{{.Comment}}", "committed")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], id[7:19]+"|") || !strings.HasSuffix(lines[0], "|the step") ||
		!strings.HasPrefix(lines[1], "<missing>|2") {
		t.Errorf("history of a committed image:\n%s\nwant its id and the commit's step over <missing> and the import's 2MB layer", out)
	}
	if got := e.ok(nil, "image", "history", "-q", "--no-trunc", "committed"); got != id+"\n<missing>\n" {
		t.Errorf("image history -q --no-trunc printed %q", got)
	}
	if out := e.ok(nil, "history", "bb"); !strings.HasPrefix(out, "IMAGE ") || !strings.Contains(out, "CREATED BY") {
		t.Errorf("history's table:\n%s", out)
	}
	if r := e.nook(nil, "history", "nosuch"); r.code != 125 || !strings.Contains(r.stderr, "nosuch") {
		t.Errorf("history of no image: %s", r)
	}

	version := strings.TrimSpace(e.ok(nil, "--version"))
	if got := e.ok(nil, "version", "--format", "{{.Client.Version}} {{.Server.Version}} {{.Client.Os}}"); got != version+" "+version+" linux\n" {
		t.Errorf("version --format printed %q, want %q twice and linux", got, version)
	}
	out = e.ok(nil, "version")
	for _, want := range []string{"Client:\n Version:", "Server: nook", " Engine:\n  Version:", "OS/Arch:"} {
		if !strings.Contains(out, want) {
			t.Errorf("version printed\n%s\nwant %q in it", out, want)
		}
	}

	e.ok(nil, "run", "-d", "--name", "old", "bb", "sleep", "1000")
	if got := e.ok(nil, "rename", "old", "new"); got != "" {
		t.Errorf("rename printed %q", got)
	}
	if got := e.ok(nil, "exec", "new", "echo", "still"); got != "still\n" {
		t.Errorf("exec in the renamed container: %q", got)
	}
	if got := e.ok(nil, "ps", "--format", "{{.Names}}"); got != "new\n" {
		t.Errorf("ps after rename: %q", got)
	}
	e.ok(nil, "container", "rename", "c1", "c2")
	for _, tc := range []struct{ args, want string }{
		{"rename new c2", "already in use"},
		{"rename new new", "the name it has"},
		{"rename old x", "no such container"},
		{"rename new bad/name", "invalid container name"},
	} {
		if r := e.nook(nil, strings.Fields(tc.args)...); r.code != 125 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("nook %s: want exit 125 and %q:\n%s", tc.args, tc.want, r)
		}
	}
}

// TestWarningsOneFormat: warnings read as nook's own lines, one per kind:
// an import of a tar with many device nodes says once how many were
// skipped and why, and a library's warning (export leaving out files it
// cannot represent) is no raw "time=… level=WARN" line, nor repeated.
func TestWarningsOneFormat(t *testing.T) {
	e := runEnv(t)
	es := []entry{dir("dev/", 0o755), file("keep", "k")}
	for _, n := range []string{"null", "zero", "full", "random", "urandom", "tty", "console", "ptmx"} {
		es = append(es, entry{name: "dev/" + n, typ: tar.TypeChar, mode: 0o666})
	}
	r := e.nook(tarOf(t, es...), "import", "-", "devs")
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if r.code != 0 || len(lines) != 1 || !strings.HasPrefix(lines[0], "nook: warning: skipped 8 entries, device node (") ||
		!strings.Contains(lines[0], "and 5 more") {
		t.Errorf("import of a tar with 8 device nodes: want one warning line counting them:\n%s", r)
	}

	e.ok(nil, "run", "--name", "w", "bb", "touch", "/.wh.a", "/.wh.b")
	r = e.nook(nil, "export", "-o", filepath.Join(e.home, "w.tar"), "w")
	lines = strings.Split(strings.TrimSpace(r.stderr), "\n")
	if r.code != 0 || len(lines) != 1 || !strings.HasPrefix(lines[0], "nook: warning: leaving out a file whose name reads as a whiteout marker") {
		t.Errorf("export of files named as whiteouts: want one nook: warning: line:\n%s", r)
	}
}

// TestTerminalGroupTTY: a container's terminal belongs to group tty (5),
// mode 620, as with Docker's devpts (gid=5,mode=620), so write and mesg work.
func TestTerminalGroupTTY(t *testing.T) {
	e := runEnv(t)
	got := e.ok(nil, "run", "--rm", "-t", "bb", "sh", "-c", `stat -c "%g %a" $(tty)`)
	if strings.TrimSpace(got) != "5 620" {
		t.Errorf("the terminal's group and mode: %q, want 5 620", got)
	}
}
