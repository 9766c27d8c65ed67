// Command nook runs containers for an unprivileged user: Docker's verbs, no
// daemon, no root. The same binary is re-executed for each stage that has to
// run inside new namespaces; rootless.Dispatch runs such a stage before any
// command-line parsing happens.
package main

import (
	"os"

	"nook/cli"
	"nook/rootless"
)

func main() {
	if code, ok := rootless.Dispatch(cli.Stages()); ok {
		os.Exit(code)
	}
	os.Exit(cli.Main(os.Args[1:]))
}
