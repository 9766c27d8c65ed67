package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"nook/registry/hosts"
)

// LoginCmd is `nook login`.
type LoginCmd struct {
	Username      string `short:"u" name:"username" help:"Username."`
	Password      string `short:"p" name:"password" help:"Password (prefer --password-stdin)."`
	PasswordStdin bool   `name:"password-stdin" help:"Take the password from stdin."`
	AuthFile      string `name:"authfile" type:"path" help:"Credentials file to write (default: Docker's config.json)."`
	TLSVerify     *bool  `name:"tls-verify" help:"Verify the registry's TLS certificate (default: registries.conf's word)."`
	Server        string `arg:"" optional:"" help:"Registry (default: docker.io)."`
}

// Run checks the credentials against the registry and saves them.
func (c *LoginCmd) Run(g *Globals) error {
	if c.Password != "" && c.PasswordStdin {
		return errors.New("--password and --password-stdin are mutually exclusive")
	}
	server := hosts.ServerName(c.Server)
	user, password := c.Username, c.Password
	switch {
	case c.PasswordStdin:
		if user == "" {
			return errors.New("must provide --username with --password-stdin")
		}
		b, err := io.ReadAll(g.Stdin)
		if err != nil {
			return fmt.Errorf("reading the password from stdin: %w", err)
		}
		if password = strings.TrimRight(string(b), "\r\n"); password == "" {
			return errors.New("no password on stdin")
		}
	case password != "":
		fmt.Fprintln(g.Stderr, "WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
	}
	if user == "" || password == "" {
		var err error
		if user, password, err = prompt(g, server, user, password); err != nil {
			return err
		}
	}
	opts := hosts.Options{TLSVerify: c.TLSVerify, AuthFile: c.AuthFile, Log: g.Log}
	if err := hosts.Login(context.Background(), server, user, password, opts); err != nil {
		return err
	}
	fmt.Fprintln(g.Stdout, "Login Succeeded")
	return nil
}

// prompt asks for what the flags did not give, as Docker does: the
// username on a line, the password without echo. Not on a terminal it
// refuses.
func prompt(g *Globals, server, user, password string) (string, string, error) {
	in, ok := g.Stdin.(*os.File)
	if !ok || !term.IsTerminal(int(in.Fd())) {
		return "", "", fmt.Errorf("cannot prompt for the credentials of %s without a terminal: give -u and --password-stdin", server)
	}
	if user == "" {
		fmt.Fprintf(g.Stderr, "Username: ")
		line, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && line == "" {
			return "", "", fmt.Errorf("reading the username: %w", err)
		}
		if user = strings.TrimSpace(line); user == "" {
			return "", "", errors.New("username is required")
		}
	}
	if password == "" {
		fmt.Fprintf(g.Stderr, "Password: ")
		b, err := term.ReadPassword(int(in.Fd()))
		fmt.Fprintln(g.Stderr)
		if err != nil {
			return "", "", fmt.Errorf("reading the password: %w", err)
		}
		if password = string(b); password == "" {
			return "", "", errors.New("password is required")
		}
	}
	return user, password, nil
}
