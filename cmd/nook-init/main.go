// Command nook-init is the container's init as a program of its own: the
// init stage of nook (rootless.InitStage with the copy-in call), linking
// only what init needs. Each `nook run` starts init on its critical path,
// and a Go program starts in time that grows with what it links: this one
// starts in about a third of the time the whole nook binary takes.
//
// It is not installed by itself: `go generate ./container/initbin` builds it
// into that package, which nook embeds and writes out to its store.
package main

import (
	"fmt"
	"os"

	"nook/container/rootcopy"
	"nook/rootless"
)

func main() {
	stages := map[string]func() int{rootless.StageInit: rootless.InitStageWith(rootcopy.InitHandlers())}
	if code, ok := rootless.Dispatch(stages); ok {
		os.Exit(code)
	}
	fmt.Fprintln(os.Stderr, "nook-init: the container's init; nook starts it, not a user")
	os.Exit(125)
}
