// Command nook-stages is the two stages of nook that run a container — the
// shim and the container's init — as a program of their own, linking only
// what they need (container/stagebin embeds it, and says why).
//
// It is not installed by itself: `go generate ./container/stagebin` builds
// it into that package, which nook embeds and writes out to its store.
package main

import (
	"fmt"
	"os"

	"nook/container/shim"
	"nook/rootless"
)

func main() {
	if code, ok := rootless.Dispatch(shim.Stages()); ok {
		os.Exit(code)
	}
	fmt.Fprintln(os.Stderr, "nook-stages: the stages of nook that run a container; nook starts them, not a user")
	os.Exit(125)
}
