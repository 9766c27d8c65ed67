// Package tests holds nook's end-to-end tests: they build the nook binary
// (or take NOOK_BIN) and drive it as the unprivileged user that runs them,
// against real namespaces, FUSE mounts and peers (skopeo, umoci, podman).
package tests
