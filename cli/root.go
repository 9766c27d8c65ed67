package cli

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"

	"github.com/alecthomas/kong"
)

// errEmptyRoot refuses an empty --root or NOOK_ROOT, which kong's path
// type would read as the working directory: a store would appear
// wherever the command happened to run.
var errEmptyRoot = errors.New("the store directory is empty: name a directory, or unset it for the default ($XDG_DATA_HOME/nook)")

// storeRootMapper parses --root and NOOK_ROOT: never empty, made absolute
// once, here, so every later step, a re-executed stage and `info` name
// the same directory whatever the working directory is by then.
type storeRootMapper struct{}

func (storeRootMapper) Decode(ctx *kong.DecodeContext, target reflect.Value) error {
	var p string
	if err := ctx.Scan.PopValueInto("directory", &p); err != nil {
		return err
	}
	if p == "" {
		return errEmptyRoot
	}
	abs, err := filepath.Abs(kong.ExpandPath(p))
	if err != nil {
		return fmt.Errorf("making %q absolute: %w", p, err)
	}
	target.SetString(abs)
	return nil
}
