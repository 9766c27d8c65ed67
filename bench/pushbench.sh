#!/bin/bash
# push benchmark: nook push vs rootless podman push, same image, same empty loopback registry.
#
#   bench/pushbench.sh                      # ~300 MB image in 6 layers, 3 runs each (min reported)
#   LAYERS=5 LAYER_MB=20 RUNS=2 bench/pushbench.sh   # quick
#   NOOK=/path/to/nook bench/pushbench.sh   # a prebuilt binary
#
# The image is pullbench.sh's (bench/mkimage.py) with its layers left as
# plain tars, as nook's import and commit store them and as Podman's
# containers/storage keeps every layer: a push compresses them (gzip, the
# default of both). Both stores get it once from the OCI layout, then each
# run pushes into a registry emptied before it (hyperfine --prepare), as
# the bench user (nook-ci when started as root), the minimum of RUNS:
#   nook push, first      layers compressed on the way: the store is reloaded
#                         before each run, so nothing is remembered
#   nook push, again      the store remembers the compressed layers of an
#                         earlier push: only the upload is left
#   podman push           rootless, overlay + fuse-overlayfs, its own XDG dirs
# and nook's peak RSS. The bar (issue 13): nook no slower than podman push.
# The Markdown table goes to stdout.
set -euo pipefail

. "$(dirname "$0")/lib.sh"
bench_setup pushbench LAYERS=6 LAYER_MB=50 RUNS=3
runs=$RUNS
need hyperfine podman docker-registry python3 curl /usr/bin/time

# Private worlds for both tools, the image and the registry (emptied
# before each run).
registry_world plain
empty="rm -rf $work/registry/docker"
nref=127.0.0.1:$port/bench/nook:1
pref=127.0.0.1:$port/bench/podman:1

say "loading the image into both stores"
# The layout names the image by a tag alone: it loads untagged.
reload_nook="$nook image prune -a -f >/dev/null; $nook load -q -i $layout >/dev/null; $nook tag \$($nook images -q) $nref"
bash -c "$reload_nook"
podman rmi -a -f >/dev/null 2>&1 || true
podman tag "$(podman pull -q "oci:$layout:bench")" "$pref"

hyperfine --runs "$runs" --export-markdown "$work/push.md" \
	-n "nook push, first (compresses)" --prepare "$empty; $reload_nook" "$nook push -q $nref" \
	-n "nook push, again (remembered)" --prepare "$empty" "$nook push -q $nref" \
	-n "podman push" --prepare "$empty" "podman push -q --tls-verify=false $pref" >&2

bash -c "$empty; $reload_nook"
rss=$( { /usr/bin/time -f %M "$nook" push -q "$nref" >/dev/null; } 2>&1 | tail -1)

echo "### push of a ${layers}-layer image: $((layers * layer_mb)) MB of plain layers, compressed to gzip, to an empty loopback registry"
echo "($(nproc) CPUs, $(uname -r), $(date -u '+%Y-%m-%d %H:%M UTC'); min of $runs runs in hyperfine's table)"
echo
cat "$work/push.md"
echo
echo "nook push (first) peak RSS: $((rss / 1024)) MB"
bash -c "$empty"
"$nook" image prune -a -f >/dev/null
podman rmi -a -f >/dev/null 2>&1 || true
