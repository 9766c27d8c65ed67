package rootless

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestReadUnshared(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		errno   error  // wrapped, when the child reported one
		wantErr string // substring; "" for success
	}{
		{"ok", []byte{unshareOK}, nil, ""},
		{"ok, frames follow", []byte{unshareOK, msgReady, 0, 0, 0, 0}, nil, ""},
		{"refused", []byte{unshareFailed, byte(unix.EPERM)}, unix.EPERM, "are user namespaces disabled?"},
		{"too many namespaces", []byte{unshareFailed, byte(unix.ENOSPC)}, unix.ENOSPC, "user.max_user_namespaces"},
		{"bad flags", []byte{unshareFailed, byte(unix.EINVAL)}, unix.EINVAL, "unsharing namespaces: invalid argument"},
		{"errno cut off", []byte{unshareFailed}, io.EOF, "reading the child's unshare error"},
		{"no entry point", []byte{unshareMissing}, nil, "not linked with its entry point"},
		{"child died", nil, io.EOF, "waiting for the child to unshare"},
		{"a frame instead", []byte{msgError, 0, 0, 0, 1, 'x'}, nil, "unexpected byte 'E'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := bytes.NewReader(tt.in)
			err := readUnshared(r)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("readUnshared = %v, want nil", err)
				}
				if want := len(tt.in) - 1; r.Len() != want {
					t.Errorf("left %d bytes unread, want %d: the frames after the report are the ladder's", r.Len(), want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("readUnshared = %v, want an error containing %q", err, tt.wantErr)
			}
			if tt.errno != nil && !errors.Is(err, tt.errno) {
				t.Errorf("readUnshared = %v, does not wrap %v", err, tt.errno)
			}
		})
	}
}

// The entry point parses the flags as decimal digits up to the end of the
// string (unshare_amd64.s).
func TestUnshareEnvVar(t *testing.T) {
	got := unshareEnvVar(unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWNET)
	if want := "_NOOK_UNSHARE=1342308352"; got != want {
		t.Errorf("unshareEnvVar = %q, want %q", got, want)
	}
}
