#!/bin/bash
# pull benchmark: nook pull vs rootless podman pull, same image, same loopback registry.
#
#   bench/pullbench.sh                      # ~300 MB image in 6 gzip layers, 5 rounds (min reported)
#   LAYERS=5 LAYER_MB=20 RUNS=2 bench/pullbench.sh   # quick
#   NOOK=/path/to/nook bench/pullbench.sh   # a prebuilt binary
#   NOOK_BEFORE=/path/to/old/nook bench/pullbench.sh # an older nook too, in the same rounds
#
# The image is made here: LAYERS layers of LAYER_MB MB each, half random
# (incompressible) and half text (compressible) in 64 KiB..4 MiB files,
# each layer gzip'd, written as an OCI layout and copied by skopeo into a
# docker-registry (the distribution registry) on 127.0.0.1. Measured, each
# as the bench user (nook-ci when started as root), into an empty store
# every run, in RUNS rounds that each run every tool once in turn (so that
# all meet the same load), the minimum and median wall time and CPU time:
#   nook pull            nook pull -q into an empty store
#   podman pull          rootless podman pull --tls-verify=false (overlay + fuse-overlayfs, own XDG dirs)
#   skopeo copy          skopeo copy docker://… oci:DIR (download only)
#   gzip -dc | tar -x    the same layer blobs unpacked one after another, then sync -f (unpack only;
#                        nook syncs what it unpacked before committing it)
# and nook's peak RSS (/usr/bin/time: the largest of nook and its user-namespace child).
# The bar (issue 13): nook ≤ 1/3 of podman's time, ≤ 1.3× the slower of skopeo and
# the plain unpack, RSS < 100 MB. The Markdown table goes to stdout.
set -euo pipefail

. "$(dirname "$0")/lib.sh"
bench_setup pullbench LAYERS=6 LAYER_MB=50 RUNS=5 NOOK_BEFORE@nook-before
runs=$RUNS
need podman skopeo docker-registry python3 curl /usr/bin/time

# Private worlds for both tools, the image and the registry.
registry_world
blobs=$(python3 -c 'import json,sys; m=json.load(open(sys.argv[1]+"/blobs/sha256/"+json.load(open(sys.argv[1]+"/index.json"))["manifests"][0]["digest"][7:])); print(" ".join(sys.argv[1]+"/blobs/sha256/"+l["digest"][7:] for l in m["layers"]))' "$layout")
compressed=$(du -cm $blobs | tail -1 | cut -f1)
ref=127.0.0.1:$port/bench/pull:1
skopeo copy -q --dest-tls-verify=false "oci:$layout:bench" "docker://$ref"

clean_nook="$nook image prune -a -f >/dev/null; rm -rf $NOOK_ROOT/pulls"
# Each tool as: name, its preparation, its command. NOOK_BEFORE=/path/to/nook
# adds an older nook binary, measured in the same rounds.
names=("nook pull") preps=("$clean_nook") cmds=("$nook pull -q $ref")
if [ -n "${NOOK_BEFORE:-}" ]; then
	names+=("nook pull (before)") preps+=("$clean_nook") cmds+=("$NOOK_BEFORE pull -q $ref")
fi
names+=("podman pull" "skopeo copy (download only)" "gzip -dc | tar -x (unpack only)")
preps+=("podman rmi -a -f >/dev/null 2>&1 || true" "rm -rf $work/oci" "rm -rf $work/unpack; mkdir $work/unpack")
cmds+=("podman pull -q --tls-verify=false $ref"
	"skopeo copy -q --src-tls-verify=false docker://$ref oci:$work/oci:bench"
	"for b in $blobs; do gzip -dc \$b | tar -x -C $work/unpack; done; sync -f $work/unpack")
# Rounds, each running every tool once in turn: the machine's load (other
# work) changes by the minute, and within a round every tool meets about
# the same. Wall and CPU (user+sys, children included) seconds per run.
times=$work/times
: >"$times"
for r in $(seq "$runs"); do
	for i in "${!names[@]}"; do
		bash -c "${preps[$i]}"
		/usr/bin/time -o "$work/one" -f "%e %U %S" bash -c "${cmds[$i]}" >/dev/null 2>&1 ||
			{ say "${names[$i]} failed"; exit 1; }
		echo "$i $(cat "$work/one")" >>"$times"
	done
	say "round $r of $runs done (load $(cut -d' ' -f1-3 /proc/loadavg))"
done

bash -c "$clean_nook"
rss=$( { /usr/bin/time -f %M "$nook" pull -q "$ref" >/dev/null; } 2>&1 | tail -1)

echo "### pull of a ${layers}-layer image: $((layers * layer_mb)) MB unpacked, ${compressed} MB gzip'd, loopback registry"
echo "($(nproc) CPUs, $(uname -r), $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg);"
echo "$runs interleaved rounds, empty store each run)"
echo
printf '%s\n' "${names[@]}" | python3 -c '
import sys, statistics
names = [l.rstrip("\n") for l in sys.stdin]
runs = {}
for line in open(sys.argv[1]):
    i, wall, user, system = line.split()
    runs.setdefault(int(i), []).append((float(wall), float(user) + float(system)))
mins = {i: min(w for w, _ in r) for i, r in runs.items()}
pod = names.index("podman pull")
print("| Command | min wall s | median wall s | min CPU s | min ÷ podman |")
print("|:---|---:|---:|---:|---:|")
for i, n in enumerate(names):
    r = runs[i]
    cell = n.replace("|", "\\|")
    print(f"| `{cell}` | {mins[i]:.2f} | {statistics.median(w for w, _ in r):.2f} | {min(c for _, c in r):.2f} | {mins[i] / mins[pod]:.2f} |")
slow = max(mins[names.index("skopeo copy (download only)")], mins[names.index("gzip -dc | tar -x (unpack only)")])
print()
print(f"nook ÷ podman: {mins[0] / mins[pod]:.2f} (bar ≤ 0.33); nook ÷ the slower of skopeo and the unpack: {mins[0] / slow:.2f} (bar ≤ 1.3)")
' "$times"
echo
echo "nook pull peak RSS: $((rss / 1024)) MB"
bash -c "$clean_nook"
podman rmi -a -f >/dev/null 2>&1 || true
rm -rf "$work/oci" "$work/unpack"
