#!/bin/bash
# build benchmark: nook build vs rootless podman build, same Dockerfile, same context, one run.
#
#   bench/buildbench.sh                      # 3 cold, 5 warm, 3 changed runs each (min reported)
#   RUNS=1 bench/buildbench.sh               # quick
#   NOOK=/path/to/nook bench/buildbench.sh   # a prebuilt binary
#
# The base is the host's static busybox imported into both stores as
# localhost/base:latest. The Dockerfile (10 steps) copies a 50 MB context
# (4 files of 10 MB and 1,000 of 10 KB, random), writes 20,000 small files
# in one RUN and a 100 MB file in another, and sets a few metadata
# instructions. Both tools run RUN without a network (--network none) and
# Podman as PEERS.md sets it up: overlay storage through fuse-overlayfs,
# runc, its own XDG directories. Measured, as the bench user (nook-ci when
# started as root), the minimum of the runs:
#   cold      an empty store each run but for the base (hyperfine --prepare)
#   warm      nothing changed since the last build
#   changed   one 10 KB context file changed before each run: the COPY and
#             every step after it run again
# The bar (issue 14): nook ≤ 1/2 of Podman's time cold, ≤ 1/5 warm, and a
# no-change rebuild under 0.5 s. The Markdown table goes to stdout.
set -euo pipefail

. "$(dirname "$0")/lib.sh"
bench_setup buildbench RUNS=3
runs=$RUNS
warm_runs=$((runs < 5 ? (runs == 1 ? 1 : 5) : runs))
need hyperfine podman python3 busybox

# Private worlds for both tools.
nook_world nook-store
podrun=/tmp/nbb-$(id -u)
podman_world --fresh --runc "$work/podman" fuse "$podrun"
pm() { env $podenv podman "$@"; }

# The base image and the context.
base=$work/base.tar
if [ ! -s "$base" ]; then
	root=$work/rootfs
	rm -rf "$root"
	mkdir -p "$root/bin" "$root/etc" "$root/tmp"
	cp "$(command -v busybox)" "$root/bin/busybox"
	for a in sh ls cat echo mkdir head id true; do ln -sf busybox "$root/bin/$a"; done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$root/etc/passwd"
	printf 'root:x:0:\nnobody:x:65534:\n' >"$root/etc/group"
	chmod 1777 "$root/tmp"
	tar -C "$root" -cf "$base" .
fi
ctx=$work/context
if [ ! -f "$ctx/Dockerfile" ]; then
	say "writing a 50 MB context"
	rm -rf "$ctx"
	mkdir -p "$ctx/big" "$ctx/small"
	for i in 1 2 3 4; do head -c 10485760 /dev/urandom >"$ctx/big/blob$i"; done
	for i in $(seq 1000); do head -c 10240 /dev/urandom >"$ctx/small/f$i"; done
	cat >"$ctx/Dockerfile" <<'EOF'
FROM localhost/base:latest
ENV APP=/app
WORKDIR /app
COPY . /app/src
RUN mkdir -p /data/small && cd /data/small && i=0 && while [ $i -lt 20000 ]; do echo $i > f$i; i=$((i+1)); done
RUN head -c 104857600 /dev/urandom > /data/big
LABEL bench=build
EXPOSE 8080
USER nobody
CMD ["sh"]
EOF
fi

reset_nook="$nook image prune -a -f >/dev/null 2>&1; $nook import $base localhost/base:latest >/dev/null"
reset_podman="env $podenv podman rmi -a -f >/dev/null 2>&1; env $podenv podman import -q $base localhost/base:latest >/dev/null"
nook_build="$nook build -q --network none -t bench $ctx"
podman_build="env $podenv podman build -q --network none --pull=never -t bench $ctx"
change="echo \$RANDOM\$RANDOM >> $ctx/small/f1"

say "cold: $runs runs each"
hyperfine --runs "$runs" --export-json "$work/cold.json" \
	-n nook --prepare "$reset_nook" "$nook_build" \
	-n podman --prepare "$reset_podman" "$podman_build" >&2
say "warm: $warm_runs runs each"
hyperfine --runs "$warm_runs" --warmup 1 --export-json "$work/warm.json" \
	-n nook "$nook_build" -n podman "$podman_build" >&2
say "one context file changed: $runs runs each"
hyperfine --runs "$runs" --export-json "$work/changed.json" \
	-n nook --prepare "$change" "$nook_build" \
	-n podman --prepare "$change" "$podman_build" >&2

echo "### build: 50 MB COPY, 20,000-file RUN, 100 MB RUN, metadata steps (10 steps)"
echo "($(nproc) CPUs, $(uname -r), $(date -u '+%Y-%m-%d %H:%M UTC'); nook vs rootless podman build 4.3 on fuse-overlayfs; min of runs, seconds)"
echo
python3 - "$work" <<'EOF'
import json, sys
work = sys.argv[1]
def mins(case):
    r = json.load(open(f"{work}/{case}.json"))["results"]
    return {x["command"]: min(x["times"]) for x in r}
bars = {"cold": (1/2, "nook ≤ 1/2 of podman"), "warm": (1/5, "nook ≤ 1/5 of podman, < 0.5 s"), "changed": (None, "")}
print("| case | nook | podman | nook / podman | bar |")
print("|---|---:|---:|---:|---|")
for case in ("cold", "warm", "changed"):
    m = mins(case)
    n, p = m["nook"], m["podman"]
    ratio, text = bars[case]
    ok = ""
    if ratio is not None:
        good = n <= p * ratio and (case != "warm" or n < 0.5)
        ok = text + (" ✓" if good else " ✗")
    print(f"| {case} | {n:.3f} | {p:.3f} | {n/p:.3f} | {ok} |")
EOF
bash -c "$reset_nook" >/dev/null 2>&1 || true
pm rmi -a -f >/dev/null 2>&1 || true
podman_unpause "$podrun"
