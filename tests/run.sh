#!/usr/bin/env bash
# The whole test suite, as the README gives it and CI runs it (.ci/run).
#
# Run as root on a fresh Debian 12 machine it installs what the tests use,
# creates an unprivileged user with subordinate ids when absent, makes
# /dev/fuse and /dev/net/tun 0666 (as desktop distributions ship them), then:
#   1. gofmt, go vet, staticcheck (pinned, from the module proxy);
#   2. unit tests with -race as root (NOOK_TEST_PASS=root);
#   3. unit tests again and the end-to-end tests as the unprivileged user
#      (NOOK_TEST_PASS=user): nook is proved rootless.
# Run as a non-root user it skips the setup and runs every pass as that user.
# Under CI=true a test that would skip for a missing capability fails.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/sbin"
TEST_USER="${NOOK_TEST_USER:-nook-ci}"
# A second user with NO subordinate ids, as on hosts whose administrator
# gives none: the single-id tests (TestSingleID*) run again as that user.
SINGLE_USER="${NOOK_TEST_SINGLE_USER:-nook-ci-single}"
PACKAGES=(uidmap fuse3 busybox-static skopeo umoci podman fuse-overlayfs attr util-linux bsdutils procps tar docker-registry apache2-utils runc mmdebstrap)

setup_host() {
  local missing=()
  for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if ((${#missing[@]})); then
    echo "== installing ${missing[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
  fi
  if ! id "$TEST_USER" >/dev/null 2>&1; then
    useradd -m -s /bin/bash "$TEST_USER"
  fi
  grep -q "^$TEST_USER:" /etc/subuid || usermod --add-subuids 200000-265535 "$TEST_USER"
  grep -q "^$TEST_USER:" /etc/subgid || usermod --add-subgids 200000-265535 "$TEST_USER"
  if ! id "$SINGLE_USER" >/dev/null 2>&1; then
    useradd -m -s /bin/bash -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 "$SINGLE_USER"
  fi
  sed -i "/^$SINGLE_USER:/d" /etc/subuid /etc/subgid
  chmod 0666 /dev/fuse
  [ -e /dev/net/tun ] && chmod 0666 /dev/net/tun
  return 0
}

as_user() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u "$TEST_USER" -- env -i PATH="$PATH" HOME="$(getent passwd "$TEST_USER" | cut -d: -f6)" \
      USER="$TEST_USER" CI="${CI:-}" NOOK_TEST_PASS=user NOOK_BIN="$NOOK_BIN" NOOK_TEST_DEBIAN="${NOOK_TEST_DEBIAN:-}" "$@"
  else
    env NOOK_TEST_PASS=user NOOK_BIN="$NOOK_BIN" NOOK_TEST_DEBIAN="${NOOK_TEST_DEBIAN:-}" "$@"
  fi
}

[ "$(id -u)" = 0 ] && setup_host

# A real Debian 12 root for the build tests (TestBuildDebian), made once from
# Debian's packages and kept between runs: mmdebstrap takes about a minute.
cache="${NOOK_TEST_CACHE:-/var/tmp/nook-test-cache}"
if [ -z "${NOOK_TEST_DEBIAN:-}" ] && command -v mmdebstrap >/dev/null; then
  mkdir -p "$cache" && chmod 0755 "$cache"
  if [ ! -s "$cache/debian-bookworm-minbase.tar" ]; then
    echo "== making a Debian 12 base with mmdebstrap (once, kept in $cache)"
    mmdebstrap --quiet --variant=minbase --format=tar bookworm "$cache/debian-bookworm-minbase.tar.tmp" \
      && mv "$cache/debian-bookworm-minbase.tar.tmp" "$cache/debian-bookworm-minbase.tar" \
      || echo "mmdebstrap failed: TestBuildDebian will say so"
  fi
  [ -s "$cache/debian-bookworm-minbase.tar" ] && chmod 0644 "$cache/debian-bookworm-minbase.tar" \
    && export NOOK_TEST_DEBIAN="$cache/debian-bookworm-minbase.tar"
fi

echo "== gofmt, go vet"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
[ -z "$unformatted" ] || { echo "gofmt would change: $unformatted"; exit 1; }
go vet ./...
GOARCH=arm64 go vet ./... # arm64 must keep building (its seccomp tables, no chown(2))
echo "== staticcheck"
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

work=$(mktemp -d /tmp/nook-tests.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"
bash build.sh "$work/nook"   # nook with its stages embedded (container/stagebin)
export NOOK_BIN="$work/nook"
units=$(go list ./... | grep -v '/tests$')

log="$work/log"
: >"$log"
status=0
if [ "$(id -u)" = 0 ]; then
  echo "== unit tests as root"
  set +e
  NOOK_TEST_PASS=root go test -race -count=1 -v $units >"$work/root.log" 2>&1
  rc=$?
  set -e
  cat "$work/root.log" >>"$log"
  grep -E '^(ok|FAIL|panic)|--- FAIL' "$work/root.log" || true
  if [ $rc != 0 ]; then status=1; grep -B30 -E -- '--- FAIL' "$work/root.log" | tail -200; fi
fi

echo "== unit tests and end-to-end tests as $(as_user id -un) (uid $(as_user id -u))"
mkdir -p "$work/bin" "$work/shared"
chmod 0755 "$work/bin"
chmod 1777 "$work/shared" # the full-map pass leaves a listing there for the single-id pass
for pkg in $units nook/tests; do
  name=$(echo "$pkg" | tr / _)
  flags=(-race)
  [ "$pkg" = nook/tests ] && flags=()
  go test -c "${flags[@]}" -o "$work/bin/$name.test" "$pkg"
  [ -f "$work/bin/$name.test" ] || continue # a package without tests
  chmod a+rx "$work/bin/$name.test"
  dir=$(go list -f '{{.Dir}}' "$pkg")
  set +e
  (cd "$dir" && as_user env NOOK_TEST_OWNERS_LISTING="$work/shared/owners.json" "$work/bin/$name.test" -test.v -test.count=1 -test.timeout=40m) >"$work/$name.log" 2>&1
  rc=$?
  set -e
  cat "$work/$name.log" >>"$log"
  grep -E '^e2e:' "$work/$name.log" || true
  n=$(grep -cE '^\s*--- PASS' "$work/$name.log" || true)
  if [ $rc = 0 ]; then
    echo "ok   $pkg ($n passed)"
  else
    status=1
    echo "FAIL $pkg (exit $rc); its output:"
    tail -300 "$work/$name.log"
  fi
done

# The single-id pass: the same e2e binary as a user with no subordinate ids.
if [ "$(id -u)" = 0 ]; then
  echo "== single-id end-to-end tests as $SINGLE_USER (no subordinate ids)"
  set +e
  (cd tests && runuser -u "$SINGLE_USER" -- env -i PATH="$PATH" \
    HOME="$(getent passwd "$SINGLE_USER" | cut -d: -f6)" USER="$SINGLE_USER" CI="${CI:-}" \
    NOOK_TEST_PASS=user NOOK_TEST_SINGLE_ID=1 NOOK_TEST_OWNERS_LISTING="$work/shared/owners.json" NOOK_BIN="$NOOK_BIN" NOOK_TEST_DEBIAN="${NOOK_TEST_DEBIAN:-}" \
    "$work/bin/nook_tests.test" -test.v -test.count=1 -test.timeout=20m -test.run 'TestSingleID') \
    >"$work/single.log" 2>&1
  rc=$?
  set -e
  cat "$work/single.log" >>"$log"
  if [ $rc = 0 ]; then
    echo "ok   nook/tests single-id ($(grep -cE '^\s*--- PASS' "$work/single.log" || true) passed)"
  else
    status=1
    echo "FAIL nook/tests single-id (exit $rc); its output:"
    tail -300 "$work/single.log"
  fi
fi

passed=$(grep -cE '^\s*--- PASS' "$log" || true)
failed=$(grep -cE '^\s*--- FAIL' "$log" || true)
skipped=$(grep -cE '^\s*--- SKIP' "$log" || true)
echo "skipped: $skipped, by reason (under CI=true a missing capability fails instead):"
grep -B1 -E '^\s*--- SKIP' "$log" | grep -E '^\s+[a-z_]+_test\.go:[0-9]+: ' \
  | sed -E 's/^\s+[a-z_]+_test\.go:[0-9]+: //' | sort | uniq -c | sort -rn || true
echo "tests: $passed passed, $failed failed"
exit $status
