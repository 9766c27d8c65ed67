package build

import (
	"fmt"
	"io"
	"os"

	"nook/image/layer"
	"nook/internal/compression"
)

// UnpackContext unpacks a context given as a tar (`nook build -`, plain
// or compressed) into a new temporary directory, which the caller removes
// (also on error, when the name is not empty). Entries never leave it.
func UnpackContext(r io.Reader) (string, error) {
	dir, err := os.MkdirTemp("", "nook-context-")
	if err != nil {
		return "", fmt.Errorf("making a directory for the context: %w", err)
	}
	dec, _, err := compression.Decompress(r)
	if err != nil {
		return dir, fmt.Errorf("reading the context: %w", err)
	}
	defer dec.Close()
	if _, err := layer.Apply(dec, dir, layer.ApplyOptions{}); err != nil {
		return dir, fmt.Errorf("unpacking the context: %w", err)
	}
	return dir, nil
}
