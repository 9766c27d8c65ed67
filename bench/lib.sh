# bench/lib.sh: the setup every bench script shares; sourced, not run.
#
#   . "$(dirname "$0")/lib.sh"
#   bench_setup pullbench LAYERS=6 RUNS=5 NOOK_BEFORE@nook-before
#   need podman python3
#   podman_world "$work/podman"
#
# Each script is started as root or as the bench user. As root,
# bench_setup makes the work dir, puts nook in it (a copy of $NOOK, else
# built by build.sh), gives the dir to $BENCH_USER (default nook-ci) and
# runs the script again as that user, with a clean environment but for
# the variables it names. As the user it sets $work and $nook.

# say MESSAGE...: progress on stderr, named after the script.
say() { echo "${0##*/}: $*" >&2; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bench_user=${BENCH_USER:-nook-ci}

# bench_setup NAME SPEC...: the root → bench user re-exec, then $work
# (BENCH_WORK, default /var/tmp/nook-NAME-USER) and $nook. A SPEC VAR=DEFAULT
# sets $VAR to DEFAULT when unset or empty, and passes it to the user's run;
# VAR@FILE copies the binary $VAR, when set, into the work dir as FILE and
# passes that copy's path.
bench_setup() {
	local name=$1 spec var pass=()
	shift
	if [ "$(id -u)" = 0 ]; then
		work=${BENCH_WORK:-/var/tmp/nook-$name-$bench_user}
		mkdir -p "$work"
		if [ -n "${NOOK:-}" ]; then
			cp "$NOOK" "$work/nook"
		else
			say "building nook"
			bash "$repo/build.sh" "$work/nook"
		fi
		for spec in "$@"; do
			case "$spec" in
			*@*)
				var=${spec%%@*}
				[ -z "${!var:-}" ] || cp "${!var}" "$work/${spec#*@}"
				pass+=("$var=${!var:+$work/${spec#*@}}")
				;;
			*) var=${spec%%=*} && pass+=("$var=${!var:-${spec#*=}}") ;;
			esac
		done
		chown -R "$bench_user" "$work"
		exec runuser -u "$bench_user" -- env -i PATH="$PATH:/usr/sbin:/sbin" USER="$bench_user" \
			HOME="$(getent passwd "$bench_user" | cut -d: -f6)" \
			BENCH_WORK="$work" NOOK="$work/nook" "${pass[@]}" bash "$0"
	fi
	for spec in "$@"; do
		case "$spec" in *=*) var=${spec%%=*} && export "$var=${!var:-${spec#*=}}" ;; esac
	done
	work=${BENCH_WORK:-${TMPDIR:-/var/tmp}/nook-$name-$(id -un)}
	mkdir -p "$work"
	nook=${NOOK:-}
	if [ -z "$nook" ]; then
		nook=$work/nook
		bash "$repo/build.sh" "$nook"
	fi
	export USER=${USER:-$(id -un)}
}

# need TOOL...: stop unless every tool is installed.
need() {
	local tool
	for tool in "$@"; do
		command -v "$tool" >/dev/null || { say "$tool is not installed"; exit 1; }
	done
}

# has TOOL: whether it is installed.
has() { command -v "$1" >/dev/null; }

# install_missing TOOL:PACKAGE...: as root, apt-get installs the packages
# of the tools that are missing.
install_missing() {
	local p missing=()
	for p in "$@"; do
		has "${p%%:*}" || missing+=("${p#*:}")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		say "installing ${missing[*]}"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
	fi
}

# nook_world STORE: nook's own store ($work/STORE) and runtime dir.
nook_world() {
	export NOOK_ROOT=$work/$1 XDG_RUNTIME_DIR=$work/run
	mkdir -p "$XDG_RUNTIME_DIR"
	chmod 700 "$XDG_RUNTIME_DIR"
}

# podman_world [--fresh] [--runc] [--export] DIR [DRIVER [RUNDIR]]: a private Podman in
# DIR: its own XDG_CONFIG_HOME and XDG_DATA_HOME, XDG_RUNTIME_DIR RUNDIR
# (default DIR/run), and a storage.conf for DRIVER: fuse (the default;
# overlay through fuse-overlayfs, as PEERS.md measured), native (overlay
# with no mount_program: the kernel's, Linux 5.13 on) or vfs. --fresh
# empties a Podman left there first; --runc writes the containers.conf a
# host without systemd and with hybrid cgroups needs to run containers
# (runbench.sh says why). Sets $podenv, the environment of that Podman
# (for `env $podenv podman …`); --export exports it to every podman run.
podman_world() {
	local fresh= runc= exp=
	while :; do
		case "$1" in
		--fresh) fresh=1 ;;
		--export) exp=1 ;;
		--runc) runc=1 ;;
		*) break ;;
		esac
		shift
	done
	local dir=$1 driver=${2:-fuse} run=${3:-$1/run}
	podenv="XDG_CONFIG_HOME=$dir/config XDG_DATA_HOME=$dir/data XDG_RUNTIME_DIR=$run"
	if [ -n "$fresh" ]; then
		if [ -d "$dir" ] && has podman; then env $podenv podman system reset -f >/dev/null 2>&1 || true; fi
		rm -rf "$dir" "$run" 2>/dev/null || true
	fi
	mkdir -p "$dir/config/containers" "$dir/data" "$run"
	chmod 700 "$run"
	[ -z "$runc" ] ||
		printf '[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' \
			>"$dir/config/containers/containers.conf"
	case "$driver" in
	fuse) printf '[storage]\ndriver = "overlay"\n[storage.options.overlay]\nmount_program = "/usr/bin/fuse-overlayfs"\n' ;;
	native) printf '[storage]\ndriver = "overlay"\n' ;;
	*) printf '[storage]\ndriver = "%s"\n' "$driver" ;;
	esac >"$dir/config/containers/storage.conf"
	[ -z "$exp" ] || export $podenv
}

# podman_unpause RUNDIR: stop the pause process (catatonit) rootless Podman
# keeps per runtime directory; it would outlive the bench.
podman_unpause() {
	local pause
	pause=$(cat "$1/libpod/tmp/pause.pid" 2>/dev/null) && kill "$pause" 2>/dev/null || true
}

# registry_up DIR: a docker-registry (the distribution registry) storing
# in DIR/registry, on a free loopback port; sets $port, stopped on exit.
registry_up() {
	port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
	mkdir -p "$1/registry"
	cat >"$1/registry.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $1/registry}}
http: {addr: 127.0.0.1:$port}
EOF
	docker-registry serve "$1/registry.yml" >"$1/registry.log" 2>&1 &
	regpid=$!
	trap 'kill $regpid 2>/dev/null || true' EXIT
	for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
}

# layer_image [plain]: the image of $layers layers of $layer_mb MB that
# bench/mkimage.py writes as an OCI layout in the work dir, its layers
# gzip'd or, with plain, plain tars; sets $layout. Made once, then kept.
layer_image() {
	layout=$work/layout-${1:+$1-}${layers}x${layer_mb}
	if [ ! -f "$layout/index.json" ]; then
		say "writing a ${layers} × ${layer_mb} MB image"
		rm -rf "$layout"
		python3 "$repo/bench/mkimage.py" "$layout" "$layers" "$layer_mb" ${1:+"$1"}
	fi
}

# registry_world [plain]: the world of the registry benchmarks: nook's
# store, a private Podman for every podman call, the image of $LAYERS
# layers of $LAYER_MB MB (layer_image) and a loopback registry.
registry_world() {
	layers=$LAYERS layer_mb=$LAYER_MB
	export NOOK_ROOT=$work/nook-store
	podman_world --export "$work/podman"
	layer_image "$@"
	registry_up "$work"
	# Podman's pause process would outlive the bench, as the registry would.
	trap 'kill $regpid 2>/dev/null || true; podman_unpause "$work/podman/run"' EXIT
}
