// Package container is a container's life: create, start, state, logs, stop,
// rm, exec — composing the image store, the FUSE union and the namespaces.
package container
