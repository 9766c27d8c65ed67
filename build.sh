#!/usr/bin/env bash
# build.sh [OUT]: builds nook (./nook by default) as one static binary with
# the stages that run a container embedded: go generate builds them as a
# program of their own (container/stagebin, which says why), go build embeds
# it. A plain `go build .` works too; its containers start slower.
set -euo pipefail
out=$(realpath -m "${1:-nook}")
cd "$(dirname "$0")"
go generate ./container/stagebin
CGO_ENABLED=0 go build -o "$out" .
