// Command entry is a program linked with rootless's entry point
// (rootless.EntrySymbol) for selfunshare_test.go, which builds it: it runs
// no stage of its own, so a stage it is started for is unknown to it.
package main

import (
	"os"

	"nook/rootless"
)

func main() {
	if code, ok := rootless.Dispatch(nil); ok {
		os.Exit(code)
	}
	os.Exit(2)
}
