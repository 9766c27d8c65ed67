package image

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ErrBadChange marks a --change instruction that cannot be applied.
var ErrBadChange = errors.New("bad --change")

// ApplyChanges applies Dockerfile instructions, as `docker import --change`
// and `docker commit --change` take them, to an image config. Parsing is
// BuildKit's, so quoting and JSON forms behave as in a Dockerfile.
func ApplyChanges(cfg *ocispec.ImageConfig, changes []string) error {
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
			// Quotes and $VARS are resolved as a Dockerfile build would,
			// against the environment the config has so far.
			if ex, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
				lex := shell.NewLex('\\')
				err := ex.Expand(func(word string) (string, error) {
					out, _, err := lex.ProcessWord(word, shell.EnvsFromSlice(cfg.Env))
					return out, err
				})
				if err != nil {
					return fmt.Errorf("%w %q: %v", ErrBadChange, change, err)
				}
			}
			if err := applyChange(cfg, cmd); err != nil {
				return fmt.Errorf("%w %q: %v", ErrBadChange, change, err)
			}
		}
	}
	return nil
}

func applyChange(cfg *ocispec.ImageConfig, cmd instructions.Command) error {
	switch c := cmd.(type) {
	case *instructions.CmdCommand:
		cfg.Cmd = shellForm(c.ShellDependantCmdLine)
	case *instructions.EntrypointCommand:
		cfg.Entrypoint = shellForm(c.ShellDependantCmdLine)
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			cfg.Env = setEnv(cfg.Env, kv.Key, kv.Value)
		}
	case *instructions.WorkdirCommand:
		cfg.WorkingDir = path.Join("/", cfg.WorkingDir, c.Path)
		if path.IsAbs(c.Path) {
			cfg.WorkingDir = path.Clean(c.Path)
		}
	case *instructions.UserCommand:
		cfg.User = c.User
	case *instructions.LabelCommand:
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for _, kv := range c.Labels {
			cfg.Labels[kv.Key] = kv.Value
		}
	case *instructions.ExposeCommand:
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range c.Ports {
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			cfg.ExposedPorts[p] = struct{}{}
		}
	case *instructions.StopSignalCommand:
		cfg.StopSignal = c.Signal
	case *instructions.VolumeCommand:
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for _, v := range c.Volumes {
			cfg.Volumes[v] = struct{}{}
		}
	default:
		return fmt.Errorf("%s is not allowed here (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR are)", strings.ToUpper(cmd.Name()))
	}
	return nil
}

// shellForm turns CMD ls -l into ["/bin/sh", "-c", "ls -l"], as Docker does.
func shellForm(c instructions.ShellDependantCmdLine) []string {
	if c.PrependShell {
		return []string{"/bin/sh", "-c", strings.Join(c.CmdLine, " ")}
	}
	return append([]string{}, c.CmdLine...)
}

func setEnv(env []string, key, value string) []string {
	for i, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			env[i] = key + "=" + value
			return env
		}
	}
	return append(env, key+"="+value)
}
