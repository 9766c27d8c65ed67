package container

import (
	"errors"
	"io"
	"os"

	"golang.org/x/term"
)

// ErrNotTTY is Docker's refusal to attach an input that is no terminal to
// a container that runs on one.
var ErrNotTTY = errors.New("the input device is not a TTY")

// CheckInputTTY returns ErrNotTTY when c runs on a terminal and takes its
// input from in, and in is not a terminal: the session would wait for
// keys nobody types, and its control characters would be mangled.
func CheckInputTTY(c *Container, in io.Reader) error {
	return CheckInput(c.Tty, c.OpenStdin, in)
}

// CheckInput is CheckInputTTY for a container yet to be made with tty
// and openStdin.
func CheckInput(tty, openStdin bool, in io.Reader) error {
	if !tty || !openStdin {
		return nil
	}
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return ErrNotTTY
}
