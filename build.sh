#!/usr/bin/env bash
# build.sh [OUT]: builds nook (./nook by default) as one static binary with
# the container's init embedded: go generate builds init as a program of its
# own (container/initbin, which says why), go build embeds it. A plain
# `go build .` works too; its containers start slower.
set -euo pipefail
out=$(realpath -m "${1:-nook}")
cd "$(dirname "$0")"
go generate ./container/initbin
CGO_ENABLED=0 go build -o "$out" .
