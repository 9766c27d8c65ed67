package cli

import (
	"context"
	"errors"
	"fmt"

	"nook/registry/hosts"
)

// LogoutCmd is `nook logout`.
type LogoutCmd struct {
	AuthFile string `name:"authfile" type:"path" help:"Credentials file (default: Docker's config.json)."`
	Server   string `arg:"" optional:"" help:"Registry (default: docker.io)."`
}

// Run removes the registry's saved credentials.
func (c *LogoutCmd) Run(g *Globals) error {
	server := hosts.ServerName(c.Server)
	err := hosts.Logout(context.Background(), server, hosts.Options{AuthFile: c.AuthFile, Log: g.Log})
	if errors.Is(err, hosts.ErrNotLoggedIn) {
		fmt.Fprintf(g.Stdout, "Not logged in to %s\n", server)
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(g.Stdout, "Removing login credentials for %s\n", server)
	return nil
}
