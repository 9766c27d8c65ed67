// Command entry is a program linked with rootless's entry point
// (rootless.EntrySymbol) for selfunshare_test.go and join_test.go, which
// build it: it runs the stages of a joined process (rootless.JoinStages)
// and no other, so another stage it is started for is unknown to it.
package main

import (
	"os"

	"nook/rootless"
)

func main() {
	if code, ok := rootless.Dispatch(rootless.JoinStages(nil)); ok {
		os.Exit(code)
	}
	os.Exit(2)
}
