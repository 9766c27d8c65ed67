package build

import (
	"fmt"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"nook/image"
)

// Changes is `import --change` and `commit --change`: Dockerfile
// instructions over an image's config, read as a build reads them. nil
// for none.
func Changes(changes []string) image.ConfigChange {
	if len(changes) == 0 {
		return nil
	}
	return func(cfg *ocispec.ImageConfig) error { return ApplyChanges(cfg, changes) }
}

// ApplyChanges applies Dockerfile instructions, as `docker import --change`
// and `docker commit --change` take them, to an image config. Quotes and
// $VARS are resolved as a build would, against the environment the config
// has so far.
func ApplyChanges(cfg *ocispec.ImageConfig, changes []string) error {
	dc := dockerspec.DockerOCIImageConfig{ImageConfig: *cfg}
	for _, change := range changes {
		res, err := parser.Parse(strings.NewReader(change))
		if err != nil {
			return fmt.Errorf("%w %q: %v", ErrBadChange, change, err)
		}
		for _, node := range res.AST.Children {
			cmd, err := instructions.ParseCommand(node)
			if err != nil {
				return fmt.Errorf("%w %q: %v", ErrBadChange, change, err)
			}
			if ex, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
				lex := shell.NewLex('\\')
				err := ex.Expand(func(word string) (string, error) {
					out, _, err := lex.ProcessWord(word, shell.EnvsFromSlice(dc.Env))
					return out, err
				})
				if err != nil {
					return fmt.Errorf("%w %q: %v", ErrBadChange, change, err)
				}
			}
			if err := applyConfig(&dc, cmd, nil); err != nil {
				return fmt.Errorf("%w %q: %v", ErrBadChange, change, err)
			}
		}
	}
	*cfg = dc.ImageConfig
	return nil
}
