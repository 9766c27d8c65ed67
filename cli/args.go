package cli

import (
	"github.com/alecthomas/kong"
)

// commandFollows is a positional argument (run's image, exec's container)
// after which every argument belongs to the container's command, as
// Docker reads `run IMAGE CMD ARGS…`: `nook run IMG -w /x pwd` runs `-w`,
// and `nook run IMG --help` runs `--help`. kong's passthrough starts only
// at the command's own first word, so a flag nook knows (-w, --help,
// --version) between the image and the command would otherwise be nook's.
type commandFollows string

// Decode takes the argument, then hands kong everything after it as
// positional arguments, which is what kong itself does on `--`.
func (a *commandFollows) Decode(ctx *kong.DecodeContext) error {
	var s string
	if err := ctx.Scan.PopValueInto(ctx.Value.Name, &s); err != nil {
		return err
	}
	*a = commandFollows(s)
	rest := ctx.Scan.PopUntil(func(t kong.Token) bool { return t.IsEOL() })
	for i := len(rest) - 1; i >= 0; i-- { // pushed in reverse: a stack
		ctx.Scan.PushTyped(rest[i].String(), kong.PositionalArgumentToken)
	}
	return nil
}
