#!/bin/bash
# Start-up benchmark: nook vs bwrap, ch-run and rootless Podman, same busybox root.
#
#   bench/runbench.sh                 # 30 runs per command (hyperfine -N, min reported)
#   RUNS=10 bench/runbench.sh         # quick
#   NOOK=/path/to/nook bench/runbench.sh   # a prebuilt binary
#   NOOK_BEFORE=/path/to/old/nook bench/runbench.sh # an older nook too, in the same hyperfine runs
#
# Measured, each as the bench user (nook-ci when started as root, else the
# current user), in one hyperfine run per workload so the machine's load is
# shared alike:
#   run   nook run --rm IMG /bin/true   bwrap and ch-run on the unpacked root,
#         (and nook with --security-opt seccomp=unconfined: what the
#         default seccomp profile costs)
#         podman run --rm --network none IMG /bin/true, twice: storage on
#         fuse-overlayfs (podman-fuse) and on the kernel's overlay (podman-native)
#   exec  nook exec CTR /bin/true       podman exec CTR /bin/true
#   ps    nook ps with 20 running       podman ps with 20 running
# A tool that is missing gets "-" (as root the script installs bubblewrap,
# charliecloud-runtime, runc and podman). The Markdown table goes to stdout,
# with nook's time over each peer's; progress goes to stderr. NOOK_TRACE=1
# on a single `nook run` shows where its time goes.
#
# Podman is Debian's 4.3, rootless, each storage driver in its own
# XDG_CONFIG_HOME/XDG_DATA_HOME/XDG_RUNTIME_DIR (it records its driver in
# its database), emptied at the start of every run, with the containers.conf
# a user of a host without systemd and with hybrid cgroups writes: runtime
# runc (crun 1.8 refuses hybrid cgroups even with --cgroups=disabled, and
# runc refuses --cgroups=disabled), cgroup_manager cgroupfs, events_logger
# file. Podman's XDG_RUNTIME_DIR must have a short path: under this
# script's work directory (/var/tmp/nook-runbench-USER/podman-DRIVER/run)
# every `podman run --rm` waited out conmon's 20 s exit timeout ("Exceeded
# conmon timeout waiting for container to exit" in --log-level=debug),
# whatever the configuration; the same store with its runtime directory
# under /tmp/nrb-UID-DRIVER runs in 0.4 s.
set -euo pipefail

. "$(dirname "$0")/lib.sh"
if [ "$(id -u)" = 0 ]; then
	install_missing bwrap:bubblewrap ch-run:charliecloud-runtime runc:runc podman:podman hyperfine:hyperfine \
		busybox:busybox-static newuidmap:uidmap
	chmod 0666 /dev/fuse
fi
bench_setup runbench RUNS=30 NOOK_BEFORE@nook-before
runs=$RUNS
need hyperfine python3 busybox

# Private worlds: nook's store and runtime dir; Podman's dirs, one set per
# storage driver (fuse-overlayfs, kernel overlay).
nook_world nook-store
drivers=(fuse native)
podrun() { # podrun DRIVER: that Podman's runtime directory, a short path (see above)
	echo "/tmp/nrb-$(id -u)-$1"
}
declare -A podenvs # DRIVER: the environment of that Podman
pm() { # pm DRIVER ARGS...: podman with that driver's dirs
	local d=$1
	shift
	env ${podenvs[$d]} podman "$@"
}
for d in "${drivers[@]}"; do
	podman_world --fresh --runc "$work/podman-$d" "$d" "$(podrun "$d")"
	podenvs[$d]=$podenv
done

# The image: the host's static busybox and a few applets.
root=$work/rootfs
if [ ! -x "$root/bin/busybox" ]; then
	say "writing the busybox root"
	rm -rf "$root"
	mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/proc" "$root/sys" "$root/dev" "$root/root"
	cp "$(command -v busybox)" "$root/bin/busybox"
	for a in sh true sleep cat ls ps; do ln -s busybox "$root/bin/$a"; done
	echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
	echo 'root:x:0:' >"$root/etc/group"
	touch "$root/etc/hosts" "$root/etc/resolv.conf" "$root/etc/hostname"
fi
img=bench/busybox:1
say "importing the image"
"$nook" rm -f $("$nook" ps -aq 2>/dev/null) >/dev/null 2>&1 || true
"$nook" image prune -a -f >/dev/null 2>&1 || true
tar -C "$root" -cf "$work/rootfs.tar" .
"$nook" import "$work/rootfs.tar" "$img" >/dev/null
# An older nook, with a store and runtime directory of its own.
before=
if [ -n "${NOOK_BEFORE:-}" ]; then
	mkdir -p "$work/run-before"
	chmod 700 "$work/run-before"
	before="env NOOK_ROOT=$work/nook-store-before XDG_RUNTIME_DIR=$work/run-before $NOOK_BEFORE"
	$before rm -f $($before ps -aq 2>/dev/null) >/dev/null 2>&1 || true
	$before image prune -a -f >/dev/null 2>&1 || true
	$before import "$work/rootfs.tar" "$img" >/dev/null
fi
podman_ok=()
if has podman && has runc; then
	"$nook" save -o "$work/image.tar" "$img"
	for d in "${drivers[@]}"; do
		if pm "$d" load -q -i "$work/image.tar" >/dev/null &&
			pm "$d" run --rm --network none --pull=never "docker.io/$img" /bin/true; then
			podman_ok+=("$d")
		else
			say "podman ($d) cannot run here; its column stays empty"
		fi
	done
fi

# bench NAME CMD...: hyperfine's minimum in ms goes to $work/NAME.ms.
results=$work/results
rm -rf "$results"
mkdir -p "$results"
bench() {
	local json=$work/hf.json
	local args=() names=()
	while [ $# -gt 0 ]; do names+=("$1"); args+=(-n "$1" "$2"); shift 2; done
	hyperfine -N -w 3 -r "$runs" --export-json "$json" "${args[@]}" >&2
	python3 - "$json" "$results" <<'PY'
import json, sys
for r in json.load(open(sys.argv[1]))["results"]:
    open(f"{sys.argv[2]}/{r['command']}.ms", "w").write("%.1f" % (min(r["times"]) * 1e3))
PY
}

say "run --rm"
cmds=(run.nook "$nook run --rm $img /bin/true")
cmds+=(run.nook-unconfined "$nook run --rm --security-opt seccomp=unconfined $img /bin/true")
[ -z "$before" ] || cmds+=(run.nook-before "$before run --rm $img /bin/true")
has bwrap && cmds+=(run.bwrap "bwrap --unshare-user --unshare-pid --unshare-ipc --unshare-uts --bind $root / --proc /proc --dev /dev /bin/true")
has ch-run && cmds+=(run.ch-run "ch-run $root -- /bin/true")
for d in "${podman_ok[@]}"; do
	cmds+=(run.podman-$d "env ${podenvs[$d]} podman run --rm --network none --pull=never docker.io/$img /bin/true")
done
bench "${cmds[@]}"

say "exec and ps with 20 running containers"
for i in $(seq 20); do "$nook" run -d --name "rb$i" "$img" sleep 1000 >/dev/null; done
for d in "${podman_ok[@]}"; do
	for i in $(seq 20); do pm "$d" run -d --network none --pull=never --name "rb$i" "docker.io/$img" sleep 1000 >/dev/null; done
done
cmds=(exec.nook "$nook exec rb1 /bin/true" ps.nook "$nook ps")
if [ -n "$before" ]; then
	# As many containers as nook's store has: exec finds its own by name.
	for i in $(seq 20); do $before run -d --name "rb$i" "$img" sleep 1000 >/dev/null; done
	cmds+=(exec.nook-before "$before exec rb1 /bin/true")
fi
for d in "${podman_ok[@]}"; do
	cmds+=(exec.podman-$d "env ${podenvs[$d]} podman exec rb1 /bin/true" ps.podman-$d "env ${podenvs[$d]} podman ps")
done
bench "${cmds[@]}"
"$nook" rm -f $("$nook" ps -aq) >/dev/null
[ -z "$before" ] || $before rm -f $($before ps -aq) >/dev/null
for d in "${podman_ok[@]}"; do
	pm "$d" rm -a -f -t 0 >/dev/null
	podman_unpause "$(podrun "$d")"
done

ms() { cat "$results/$1.ms" 2>/dev/null || echo -; }
ratio() {
	local a b
	a=$(ms "$1") b=$(ms "$2")
	if [ "$a" = - ] || [ "$b" = - ]; then echo -; else python3 -c "print('%.1fx' % ($a / $b))"; fi
}
echo "### start-up, busybox image ($(nproc) CPUs, min of $runs runs, ms)"
echo
echo "| workload | nook | bwrap | ch-run | podman, fuse-overlayfs | podman, kernel overlay | nook / bwrap | nook / ch-run | podman-fuse / nook | podman-native / nook |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for w in run exec ps; do
	echo "| $w | $(ms $w.nook) | $(ms $w.bwrap) | $(ms $w.ch-run) | $(ms $w.podman-fuse) | $(ms $w.podman-native) |" \
		"$(ratio $w.nook $w.bwrap) | $(ratio $w.nook $w.ch-run) | $(ratio $w.podman-fuse $w.nook) | $(ratio $w.podman-native $w.nook) |"
done
if [ -n "$before" ]; then
	echo
	echo "nook before (NOOK_BEFORE), same hyperfine runs: run --rm $(ms run.nook-before) ms (now $(ms run.nook)), exec $(ms exec.nook-before) ms (now $(ms exec.nook))"
fi

# The filter's cost is well under the whole run's noise on a busy machine:
# also time init's own part, from its config read to the payload started
# (NOOK_TRACE), alternating the two modes.
say "seccomp: init's part, traced"
for i in $(seq "$runs"); do
	for mode in default unconfined; do
		opt=()
		[ $mode = unconfined ] && opt=(--security-opt seccomp=unconfined)
		NOOK_TRACE=1 "$nook" run --rm "${opt[@]}" "$img" /bin/true 2>&1 >/dev/null |
			awk -v m=$mode '/ init config read/ {a = $2} / init payload started| exec payload/ {b = $2} END {print m, (b - a) / 1000}'
	done
done >"$results/seccomp-trace"
echo
echo "### seccomp: nook run --rm with Docker's default profile and unconfined (min of $runs runs, ms)"
echo
echo "| | default profile | unconfined | the filter's cost |"
echo "|---|---|---|---|"
a=$(ms run.nook) b=$(ms run.nook-unconfined)
cost=-
if [ "$a" != - ] && [ "$b" != - ]; then cost=$(python3 -c "print('%.1f' % ($a - $b))"); fi
echo "| run --rm IMG /bin/true | $a | $b | $cost |"
python3 - "$results/seccomp-trace" <<'PY'
import sys
t = {}
for line in open(sys.argv[1]):
    mode, ms = line.split()
    t.setdefault(mode, []).append(float(ms))
d, u = min(t["default"]), min(t["unconfined"])
print("| init: config read to payload started | %.2f | %.2f | %.2f |" % (d, u, d - u))
PY
