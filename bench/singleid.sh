#!/bin/bash
# Single-id mode: what the faked identity calls cost (issue 17).
#
#   bench/singleid.sh            # as root: runs as nook-ci-single (no subordinate ids)
#   RUNS=10 bench/singleid.sh
#
# Rows, interleaved runs so the machine's load is shared alike:
#   nook run --rm IMG /bin/true with the single-id rules and Docker's
#   default profile (the default), with the profile only (--force=none),
#   with the rules only (--security-opt seccomp=unconfined), with no filter
#   (both); then apt-get install of cron from a Debian 12 image whose
#   lists are fetched (needs Debian's mirror), under nook and under
#   Charliecloud's ch-run --seccomp when the installed ch-run has it
#   (Debian 12's 0.31 does not: "-").
# The Markdown table goes to stdout, progress to stderr.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
bench_user=${BENCH_USER:-nook-ci-single}
bench_setup singleid RUNS=60 NOOK_TEST_DEBIAN=/var/tmp/nook-test-cache/debian-bookworm-minbase.tar
deb=$NOOK_TEST_DEBIAN
runs=$RUNS
nook_world store
grep -q "^$(id -un):" /etc/subuid 2>/dev/null && { say "$(id -un) has subordinate ids: not single-id mode"; exit 1; }

if ! "$nook" image inspect bb >/dev/null 2>&1; then
	say "importing busybox"
	d=$(mktemp -d) && mkdir -p "$d/bin" && cp "$(command -v busybox)" "$d/bin/" && ln -s busybox "$d/bin/true"
	tar -C "$d" -c . | "$nook" import -q - bb >/dev/null && rm -rf "$d"
fi
hf() { hyperfine -N "$@" --export-json "$work/hf.json" >&2; python3 -c '
import json,sys
for r in json.load(open(sys.argv[1]))["results"]:
    print("| %s | %.1f | %.1f |" % (r["command"].split(" run --rm ")[-1].replace("|","\\|"), min(r["times"])*1e3, r["median"]*1e3))
' "$work/hf.json"; }
# The four runs interleaved (one of each in turn, so that a busy moment of
# the machine falls on all alike), each traced (NOOK_TRACE): the whole
# run's wall time, and init's part from its config read to the payload's
# exec, where the filters are compiled and installed.
say "$runs interleaved runs of each"
NOOK="$nook" RUNS="$runs" python3 - <<'PY'
import os, statistics, subprocess, time
nook, runs = os.environ["NOOK"], int(os.environ["RUNS"])
rows = [("single-id rules + default profile (the default)", []),
        ("default profile only (--force=none)", ["--force=none"]),
        ("single-id rules only (--security-opt seccomp=unconfined)", ["--security-opt", "seccomp=unconfined"]),
        ("no filter (both)", ["--force=none", "--security-opt", "seccomp=unconfined"])]
wall, init = {r[0]: [] for r in rows}, {r[0]: [] for r in rows}
env = dict(os.environ, NOOK_TRACE="1")
for i in range(runs + 3):
    for name, flags in rows:
        t = time.perf_counter()
        p = subprocess.run([nook, "run", "--rm", *flags, "bb", "/bin/true"], env=env, capture_output=True, text=True, check=True)
        if i < 3:
            continue  # warm-up
        wall[name].append((time.perf_counter() - t) * 1e3)
        ev = {l.split(" ", 3)[3].strip(): int(l.split()[1]) for l in p.stderr.splitlines() if l.startswith("nook-trace ")}
        init[name].append((ev["exec payload"] - ev["init config read"]) / 1e3)
base = rows[-1][0]
print("| nook run --rm bb /bin/true, single-id mode, %d interleaved runs | min ms | median ms | min over no filter | init's part, min ms | over no filter |" % runs)
print("| --- | ---: | ---: | ---: | ---: | ---: |")
for name, _ in rows:
    print("| %s | %.2f | %.2f | %+.2f | %.2f | %+.2f |" % (name, min(wall[name]), statistics.median(wall[name]),
          min(wall[name]) - min(wall[base]), min(init[name]), min(init[name]) - min(init[base])))
PY
if ! "$nook" image inspect debupd >/dev/null 2>&1; then
	say "importing Debian and fetching its lists"
	"$nook" import -q "$deb" deb12 >/dev/null
	"$nook" rm -f upd >/dev/null 2>&1 || true
	"$nook" run --name upd deb12 apt-get update -qq
	"$nook" commit upd debupd >/dev/null && "$nook" rm upd >/dev/null
fi
echo
echo "| apt-get install -y --no-install-recommends cron | min ms | median ms |"
echo "| --- | ---: | ---: |"
hf -r 3 -w 0 "$nook run --rm debupd apt-get install -y -qq --no-install-recommends cron"
if ch-run --help 2>&1 | grep -q -- --seccomp; then
	say "unpacking Debian for ch-run"
	rm -rf "$work/chbase" && mkdir -p "$work/chbase" && tar -C "$work/chbase" --exclude=./dev -xf "$deb" 2>/dev/null || true
	hf -r 3 -w 0 --prepare "rm -rf $work/ch && cp -a $work/chbase $work/ch" \
		"ch-run -w --seccomp $work/ch -- sh -c 'apt-get update -qq && apt-get install -y -qq --no-install-recommends cron'"
else
	echo "| ch-run --seccomp ($(ch-run --version 2>&1 | tail -1) has no --seccomp) | - | - |"
fi
