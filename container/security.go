package container

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"nook/internal/seccomp"
)

// ErrSecurityOpt is a --security-opt nook does not know.
var ErrSecurityOpt = errors.New("unsupported security option")

// securitySpec reads the --security-opt values: seccomp's into the
// container's seccomp setting (Config.Seccomp, returned): "" for Docker's
// default profile, "unconfined", or the profile file's JSON, compacted,
// which is what Docker keeps too: the container does not depend on the
// file later; the others into h.
func securitySpec(opts []string, h *HostOptions) (string, error) {
	spec := ""
	for _, o := range opts {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			k, v, ok = strings.Cut(o, ":") // Docker's older spelling
		}
		if k != "seccomp" {
			if err := h.ApplySecurityOpt(o); err != nil {
				return "", err
			}
			continue
		}
		if !ok || v == "" {
			return "", fmt.Errorf("--security-opt %q: %w: nook knows seccomp=PROFILE.json and seccomp=unconfined", o, ErrSecurityOpt)
		}
		if v == seccomp.Unconfined {
			spec = v
			continue
		}
		p, err := seccomp.Load(v)
		if err != nil {
			return "", err
		}
		// Compiled now, so that a bad rule fails create and not start.
		if _, err := seccomp.Compile(p, nil); err != nil {
			return "", fmt.Errorf("%s: %w", v, err)
		}
		var b bytes.Buffer
		if err := json.NewEncoder(&b).Encode(p); err != nil {
			return "", fmt.Errorf("encoding seccomp profile %s: %w", v, err)
		}
		spec = strings.TrimSpace(b.String())
	}
	return spec, nil
}

// securityOpt is inspect's HostConfig.SecurityOpt as Docker shows it:
// nothing for the default profile.
func (c *Config) securityOpt() []string {
	var out []string
	if c.NoNewPrivileges {
		out = append(out, "no-new-privileges")
	}
	if c.Seccomp != "" {
		out = append(out, "seccomp="+c.Seccomp)
	}
	return out
}
