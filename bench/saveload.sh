#!/bin/bash
# save/load benchmark: nook vs rootless Podman, same image, same disk.
#
#   bench/saveload.sh            # a ~300 MB image, 5 runs each (hyperfine, min reported)
#   SIZE_MB=50 RUNS=2 bench/saveload.sh   # quick
#   NOOK=/path/to/nook bench/saveload.sh  # a prebuilt binary
#
# The image is one layer: a large file of incompressible data plus 2000
# small files. Measured, each as the bench user (nook-ci when started as
# root, else the current user):
#   save  nook save -o FILE         vs  podman save --format docker-archive -o FILE
#   load  nook load -i FILE         vs  podman load -i FILE   (into an empty store each run)
#         and tar -x of the same root filesystem to the same disk, synced (the bar:
#         nook load at no less than half tar's speed)
# Both load the archive nook saved. Podman uses its own XDG dirs and
# storage.conf (overlay with fuse-overlayfs, as PEERS.md measured; set
# PODMAN_DRIVER=vfs for vfs). The Markdown table goes to stdout.
set -euo pipefail

. "$(dirname "$0")/lib.sh"
bench_setup saveload SIZE_MB=300 RUNS=5 PODMAN_DRIVER=overlay
size_mb=$SIZE_MB
runs=$RUNS
need hyperfine podman python3

# Private worlds for both tools.
export NOOK_ROOT=$work/nook-store
driver=fuse
[ "$PODMAN_DRIVER" != vfs ] || driver=vfs
podman_world --export "$work/podman" "$driver"
trap 'podman_unpause "$work/podman/run"' EXIT

rootfs=$work/rootfs-${size_mb}.tar
if [ ! -f "$rootfs" ]; then
	say "writing a ${size_mb} MB root filesystem"
	python3 - "$rootfs" "$size_mb" <<'PY'
import io, os, sys, tarfile
path, mb = sys.argv[1], int(sys.argv[2])
small, n = 4096, 2000
with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tf:
    def add(name, size):
        ti = tarfile.TarInfo(name); ti.size = size; ti.mode = 0o644
        tf.addfile(ti, io.BytesIO(os.urandom(size)))
    add("data/large.bin", mb * 1024 * 1024 - small * n)
    for i in range(n):
        add(f"data/d{i % 20}/f{i}", small)
PY
fi

say "importing the image"
"$nook" image prune -a -f >/dev/null 2>&1 || true
"$nook" import -q "$rootfs" bench/saveload:1 >/dev/null
"$nook" save -o "$work/nook.tar" bench/saveload:1
podman load -q -i "$work/nook.tar" >/dev/null
ls -l "$work/nook.tar" >&2

hyperfine --runs "$runs" --export-markdown "$work/save.md" \
	-n "nook save" "$nook save -o $work/out-nook.tar bench/saveload:1" \
	-n "podman save" "rm -f $work/out-podman.tar; podman save --format docker-archive -o $work/out-podman.tar docker.io/bench/saveload:1" >&2
hyperfine --runs "$runs" --export-markdown "$work/load.md" \
	-n "nook load" --prepare "$nook image prune -a -f" "$nook load -q -i $work/nook.tar" \
	-n "podman load" --prepare "podman rmi -a -f" "podman load -q -i $work/nook.tar" \
	-n "tar -x" --prepare "rm -rf $work/tarx; mkdir $work/tarx" "tar -xf $rootfs -C $work/tarx && sync -f $work/tarx" >&2

echo "### save/load of a ${size_mb} MB image ($(nproc) CPUs, min of $runs runs in hyperfine's table)"
echo
cat "$work/save.md"
echo
cat "$work/load.md"
rm -rf "$work/out-nook.tar" "$work/out-podman.tar" "$work/tarx"
"$nook" image prune -a -f >/dev/null 2>&1 || true
podman rmi -a -f >/dev/null 2>&1 || true
