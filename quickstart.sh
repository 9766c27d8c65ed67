#!/usr/bin/env bash
# nook's quick start: install what nook needs, build it, import a small
# image made from the host's busybox, look at it and run something in it. Run it as your own
# user (it uses sudo for the one step that needs root) or as root.
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$PATH:/usr/local/go/bin"
SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo

echo "== installing uidmap fuse3 busybox-static; /dev/fuse 0666"
$SUDO apt-get update -q >/dev/null
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q uidmap fuse3 busybox-static >/dev/null
$SUDO chmod 0666 /dev/fuse
if [ "$(id -u)" != 0 ] && ! grep -q "^$(id -un):" /etc/subuid 2>/dev/null; then
  echo "== giving $(id -un) subordinate ids"
  $SUDO usermod --add-subuids 100000-165535 --add-subgids 100000-165535 "$(id -un)" || true
fi

echo "== building nook"
bash build.sh nook

echo "== importing busybox from this host"
rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp"
cp "$(command -v busybox)" "$rootfs/bin/busybox"
for applet in sh ls cat echo id env hostname; do ln -s busybox "$rootfs/bin/$applet"; done
mkdir -p "$rootfs/proc" "$rootfs/sys" "$rootfs/dev"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$rootfs/etc/passwd"
tar -C "$rootfs" -c . | ./nook import -c 'CMD ["/bin/sh"]' - busybox:host

echo "== nook images"
./nook images
echo "== nook inspect busybox:host"
./nook inspect -f '{{.Id}} {{.Os}}/{{.Architecture}} {{json .Config.Cmd}} {{.Size}} bytes' busybox:host
echo "== nook run --rm busybox:host"
./nook run --rm busybox:host sh -c 'echo "hello from a container: $(id -u) in $(hostname)"; ls /'
echo "== nook info"
./nook info || true
