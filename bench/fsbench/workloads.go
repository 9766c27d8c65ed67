package fsbench

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"

	"nook/bench/fixture"
	"nook/bench/report"
)

// Configuration names, as the table's columns.
const (
	Native        = "native"
	FuseOverlayfs = "fuse-overlayfs"
	Nook          = "nook"
)

// workload is one row of the table.
type workload struct {
	name string
	// cold runs drop the page cache (dentries and inodes too) before each run.
	cold bool
	// write workloads get a fresh upper dir (a fresh mount) per run, and
	// native a fresh scratch dir; read workloads share one mount.
	write bool
	// args builds the worker command against root, the tree as the
	// configuration shows it (union mount, native tree or scratch dir).
	args func(fx *fixture.Manifest, root string, native bool) []string
	// prep are untimed worker commands a native write run needs first.
	prep func(fx *fixture.Manifest, root string) [][]string
	// want checks a result, so a broken mount cannot pass for a fast one.
	want func(fx *fixture.Manifest, r Result) error
	bars []report.Bar
	// manyFiles write runs create or remove thousands of inodes. Their
	// trees are removed only after every write run: on ext4 without a
	// journal (this machine's disk), inodes freed in the last 60 s (360 s
	// while their inode table block is dirty) are skipped when allocating,
	// one lookup each, so a run right after the previous run's 20,000
	// files were removed spent 250 µs per file creating them, in the
	// host filesystem, whatever the configuration.
	manyFiles bool
}

// selectWorkloads keeps the workloads whose name matches only ("" keeps all).
func selectWorkloads(ws []workload, only string) ([]workload, error) {
	if only == "" {
		return ws, nil
	}
	re, err := regexp.Compile(only)
	if err != nil {
		return nil, fmt.Errorf("workload filter %q: %w", only, err)
	}
	var out []workload
	for _, w := range ws {
		if re.MatchString(w.name) {
			out = append(out, w)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("workload filter %q matches no workload", only)
	}
	return out, nil
}

func fasterThanFO() report.Bar { return report.Bar{Versus: FuseOverlayfs, Max: 1} }

func vsNative(max float64) report.Bar { return report.Bar{Versus: Native, Max: max} }

// writeFileCount is how many files "write 1 GiB" spreads its bytes over.
const writeFileCount = 8

// workloads lists the table's rows in order: reads on a shared mount
// first (so the servers' memory is measured after the walks), then writes.
// writeTotal is the size of the write workload.
func workloads(fx *fixture.Manifest, writeTotal int64) []workload {
	s := fx.Spec
	big := fmt.Sprintf("%d MiB", s.BigSize>>20)
	files := fmt.Sprintf("%s files", count(s.Files))
	seq := func(fx *fixture.Manifest, root string, _ bool) []string {
		return []string{"seqread", filepath.Join(root, fixture.BigName)}
	}
	wantBig := func(fx *fixture.Manifest, r Result) error { return expect("bytes read", r.Bytes, fx.Spec.BigSize) }
	stat := func(_ *fixture.Manifest, root string, _ bool) []string { return []string{"statwalk", root} }
	wantEntries := func(fx *fixture.Manifest, r Result) error {
		return expect("entries", r.Count, int64(fx.Merged.Entries))
	}
	readAll := func(_ *fixture.Manifest, root string, _ bool) []string { return []string{"readall", root} }
	wantAll := func(fx *fixture.Manifest, r Result) error {
		if err := expect("files read", r.Count, int64(fx.Merged.Files)); err != nil {
			return err
		}
		return expect("bytes read", r.Bytes, fx.Merged.Bytes)
	}
	return []workload{
		{name: "sequential read " + big + ", cold", cold: true, args: seq, want: wantBig,
			bars: []report.Bar{fasterThanFO()}},
		{name: "sequential read " + big + ", warm", args: seq, want: wantBig,
			bars: []report.Bar{vsNative(1.2), fasterThanFO()}},
		{name: "stat walk " + files + ", cold", cold: true, args: stat, want: wantEntries,
			bars: []report.Bar{fasterThanFO()}},
		{name: "stat walk " + files + ", warm", args: stat, want: wantEntries,
			bars: []report.Bar{vsNative(1.5), fasterThanFO()}},
		{name: "readdir walk " + files + ", warm", want: wantEntries,
			args: func(_ *fixture.Manifest, root string, _ bool) []string { return []string{"readdirwalk", root} },
			bars: []report.Bar{fasterThanFO()}},
		{name: "`ls -lR` " + files + ", warm",
			args: func(_ *fixture.Manifest, root string, _ bool) []string { return []string{"lslr", root} },
			bars: []report.Bar{fasterThanFO()}},
		{name: "read all " + files + ", cold", cold: true, args: readAll, want: wantAll,
			bars: []report.Bar{fasterThanFO()}},
		{name: "read all " + files + ", warm", args: readAll, want: wantAll,
			bars: []report.Bar{vsNative(2), fasterThanFO()}},

		{name: "copy-up: append 1 byte to the " + big + " file", write: true,
			args: func(fx *fixture.Manifest, root string, native bool) []string {
				if native { // what a copy-up has to do: cp, then append
					return []string{"cpappend", filepath.Join(fx.Native, fixture.BigName), filepath.Join(root, fixture.BigName)}
				}
				return []string{"append", filepath.Join(root, fixture.BigName)}
			},
			want: func(fx *fixture.Manifest, r Result) error {
				return expect("size after append", r.Bytes, fx.Spec.BigSize+1)
			},
			bars: []report.Bar{fasterThanFO()}},
		{name: fmt.Sprintf("write %d MiB as %d new files", writeTotal>>20, writeFileCount), write: true,
			args: func(_ *fixture.Manifest, root string, _ bool) []string {
				return []string{"write", filepath.Join(root, "new"), strconv.FormatInt(writeTotal, 10), strconv.Itoa(writeFileCount)}
			},
			want: func(_ *fixture.Manifest, r Result) error { return expect("bytes written", r.Bytes, writeTotal) },
			bars: []report.Bar{vsNative(1.3), fasterThanFO()}},
		{name: "untar " + files + " into it", write: true, manyFiles: true,
			args: func(fx *fixture.Manifest, root string, _ bool) []string {
				return []string{"untar", fx.Tar, filepath.Join(root, "untar")}
			},
			want: func(fx *fixture.Manifest, r Result) error {
				return expect("entries untarred", r.Count, int64(fx.TarSet.Entries))
			},
			bars: []report.Bar{fasterThanFO()}},
		{name: "`rm -rf` the lower tree of " + files, write: true, manyFiles: true,
			args: func(_ *fixture.Manifest, root string, _ bool) []string {
				return []string{"rmrf", filepath.Join(root, fixture.SmallDir)}
			},
			prep: func(fx *fixture.Manifest, root string) [][]string {
				return [][]string{{"cpa", filepath.Join(fx.Native, fixture.SmallDir), filepath.Join(root, fixture.SmallDir)}}
			},
			bars: []report.Bar{fasterThanFO()}},
	}
}

func count(n int) string {
	if n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return strconv.Itoa(n)
}

func expect(what string, got, want int64) error {
	if got != want {
		return fmt.Errorf("%s: got %d, want %d (the tree is not what the fixture built)", what, got, want)
	}
	return nil
}

// Method says how the table was measured, as notes printed under it.
func Method(quick bool) []string {
	notes := []string{
		"Each cell is the minimum over the runs (the machine is shared: noise only adds time); configurations take turns run by run.",
		"Timing is done inside a worker process running as the bench user (inside nook's namespace when it needs one), around the operation only.",
		"Layers: a bottom layer (the big file, the small-file tree) and a top layer with whiteouts, added files and an opaque dir; native is the merged tree as a plain directory on the same disk.",
		"Reads share one mount per union; cold runs follow `sync; echo 3 > /proc/sys/vm/drop_caches` (root only); warm runs follow one untimed run.",
		"Stat walk: readdir plus fstatat of every entry (like find); readdir walk: readdir only, by d_type; read all: a Go walker that opens and reads every file whole (no tar: GNU tar skips reading when writing to /dev/null); `ls -lR` writes to /dev/null.",
		"Writes get a fresh mount with an empty upper dir per run (native: a fresh scratch dir), after a `sync`; write = 1 MiB writes, no fsync; native copy-up = `cp` of the file, then the append.",
		"Both unions are mounted with `-o volatile`, as Podman mounts fuse-overlayfs for `run --rm` containers: fuse-overlayfs never syncs a copy-up, nook syncs it (as kernel overlayfs does) unless volatile.",
		"The trees of untar and `rm -rf` runs are removed after all write runs: ext4 without a journal skips inodes freed in the last minute when allocating, which made whichever run followed a removal of 20,000 files pay up to 250 µs per file created.",
		"RSS: VmHWM of the server's process tree after the read workloads; per file = (VmHWM − VmRSS right after mounting) / entries in the tree.",
	}
	if quick {
		notes = append(notes, "QUICK MODE: small fixture, 128 MiB written, one run unless -runs: a smoke test, not a measurement.")
	}
	return notes
}
