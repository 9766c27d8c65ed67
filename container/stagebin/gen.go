//go:build ignore

// gen builds cmd/nook-stages into bin/ for package stagebin to embed: a
// static, stripped binary, built from the module's sources alone
// (-trimpath, no VCS stamp) so that the same tree gives the same bytes,
// and its SHA-256, which names the file nook writes out (nook never hashes
// it at run time). On amd64 the binary's entry point is
// rootless.EntrySymbol, which unshares the shim's namespaces before Go's
// runtime starts; nook-stages.entry then names it. go generate runs it; -o
// writes elsewhere (the freshness test builds a second copy to compare).
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"nook/rootless"
)

func main() {
	out := flag.String("o", "bin", "directory to write nook-stages and nook-stages.sha256 in")
	flag.Parse()
	if err := gen(*out); err != nil {
		fmt.Fprintf(os.Stderr, "stagebin: %v\n", err)
		os.Exit(1)
	}
}

func gen(out string) error {
	tmp := filepath.Join(out, ".nook-stages.tmp")
	defer os.Remove(tmp)
	ldflags, entry := "-s -w", ""
	if arch := os.Getenv("GOARCH"); arch == "amd64" || arch == "" && runtime.GOARCH == "amd64" {
		entry = rootless.EntrySymbol
		ldflags += " -E=" + entry
	}
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags="+ldflags, "-o", tmp, "nook/cmd/nook-stages")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building nook-stages: %w", err)
	}
	data, err := os.ReadFile(tmp)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	// The old sum goes first: a binary without its sum embeds nothing,
	// one with another binary's sum would be written out under its name.
	sumPath := filepath.Join(out, "nook-stages.sha256")
	if err := os.Remove(sumPath); err != nil && !os.IsNotExist(err) {
		return err
	}
	entryPath := filepath.Join(out, "nook-stages.entry")
	if err := os.Remove(entryPath); err != nil && !os.IsNotExist(err) {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(out, "nook-stages")); err != nil {
		return err
	}
	if entry != "" {
		if err := os.WriteFile(entryPath, []byte(entry+"\n"), 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(sumPath, []byte(hex.EncodeToString(sum[:])+"\n"), 0o644)
}
