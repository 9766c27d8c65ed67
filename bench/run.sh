#!/bin/bash
# nook's benchmark: bench/run.sh [fs|all] [nookbench flags...]
#
#   fs    native disk vs fuse-overlayfs vs nook's FUSE union, same layers, one run
#   all   every suite (today: fs)
#
# Flags go to the driver (bench/cmd/nookbench): -quick (smoke test, < 1 min),
# -runs N (default 5; the minimum is reported), -only REGEXP (workloads whose
# name matches, e.g. -only 'untar|copy-up'), -timeout D, -keep, -reuse,
# -no-cold (as root, cold runs drop the whole machine's page cache), -v.
# The Markdown table goes to stdout, progress to stderr. The work dir (fixture
# and scratch trees, on the disk measured) is $BENCH_WORK, default
# /var/tmp/nookbench-USER (as non-root: under $TMPDIR if set).
#
# As root it sets the machine up (Debian packages, /dev/fuse 0666, the bench
# user $BENCH_USER, default nook-ci, with subordinate ids), then runs the
# driver, which keeps root only to drop caches (cold runs) and to abort a
# stuck FUSE connection; every mount and workload runs as the bench user.
# As an unprivileged user it just runs, as that user, with no cold runs.
#
# nook's column appears once `go build .` yields a binary whose
# `nook mount --help` succeeds.
set -euo pipefail

say() { echo "run.sh: $*" >&2; }

suite=all
case "${1:-}" in
fs | all) suite=$1; shift ;;
-h | --help) sed -n '2,/^set -e/p' "$0" | sed 's/^# \{0,1\}//; /^set -e/d'; exit 0 ;;
esac

repo=$(cd "$(dirname "$0")/.." && pwd)
bench_user=${BENCH_USER:-nook-ci}
if [ "$(id -u)" = 0 ]; then
	work=${BENCH_WORK:-/var/tmp/nookbench-$bench_user}
else
	work=${BENCH_WORK:-${TMPDIR:-/var/tmp}/nookbench-$(id -un)}
fi
for a in "$@"; do
	case "$a" in -work | --work | -work=* | --work=*) say "set the work dir with BENCH_WORK, not -work"; exit 2 ;; esac
done

if [ "$(id -u)" = 0 ]; then
	need=()
	command -v fuse-overlayfs >/dev/null || need+=(fuse-overlayfs)
	command -v fusermount3 >/dev/null || need+=(fuse3)
	command -v newuidmap >/dev/null || need+=(uidmap)
	command -v nsenter >/dev/null || need+=(util-linux)
	command -v tar >/dev/null || need+=(tar)
	if [ ${#need[@]} -gt 0 ]; then
		say "installing ${need[*]}"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
	fi
	chmod 0666 /dev/fuse
	if ! id "$bench_user" >/dev/null 2>&1; then
		say "creating user $bench_user"
		useradd -m -s /bin/bash "$bench_user"
	fi
	if ! grep -q "^$bench_user:" /etc/subuid; then
		usermod --add-subuids 100000-165535 --add-subgids 100000-165535 "$bench_user"
	fi
	user_flag=(-user "$bench_user")
else
	[ -r /dev/fuse ] && [ -w /dev/fuse ] || { say "/dev/fuse is not read-writable by $(id -un): run as root once, or chmod 0666 /dev/fuse"; exit 1; }
	user_flag=()
fi

# One run per work dir: a second one would tear down the first one's mounts.
# The lock file belongs to the bench user, so its own runs can take it too.
exec 9>>"$work.lock"
if [ "$(id -u)" = 0 ]; then chown "$bench_user" "$work.lock"; fi
flock -n 9 || { say "another run is using $work ($work.lock is locked)"; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/nookbench-bin.XXXXXX")
chmod 755 "$tmp"

# Leave no mount of this run's work dir behind, whatever happened to the
# driver (and touch no one else's).
cleanup() {
	local dev mnt
	while read -r dev mnt; do
		say "removing leftover mount $mnt"
		if [ "$(id -u)" = 0 ]; then
			mountpoint -q /sys/fs/fuse/connections || mount -t fusectl none /sys/fs/fuse/connections 2>/dev/null || true
			echo 1 >"/sys/fs/fuse/connections/${dev#*:}/abort" 2>/dev/null || true
			umount -l "$mnt" || true
		else
			fusermount3 -u -z "$mnt" || true
		fi
	done < <(awk -v w="$work/" 'index($5, w) == 1 && $9 ~ /^fuse/ { print $3, $5 }' /proc/self/mountinfo)
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

command -v go >/dev/null || { say "go is needed to build the driver and nook (Go 1.26; Debian 12 has none that new: https://go.dev/dl)"; exit 1; }
cd "$repo"
CGO_ENABLED=0 go build -buildvcs=false -o "$tmp/nookbench" ./bench/cmd/nookbench
nook_flag=()
if ! CGO_ENABLED=0 go build -buildvcs=false -o "$tmp/nook" . 2>"$tmp/nook-build.log"; then
	say "nook column left out: nook does not build ($(tail -n 1 "$tmp/nook-build.log"))"
elif ! "$tmp/nook" mount --help >/dev/null 2>&1; then
	say "nook column left out: nook has no mount verb yet (nook mount --help fails)"
else
	nook_flag=(-nook "$tmp/nook")
fi
chmod -R a+rX "$tmp"

"$tmp/nookbench" -work "$work" "${user_flag[@]}" "${nook_flag[@]}" "$@" "$suite"
