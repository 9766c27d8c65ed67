// Package frame reads and writes the frames of nook's stream protocols,
// the stages' sync socket (rootless/sync.go) and the attach socket
// (container/shim/attach.go): a type byte, a big-endian uint32 payload
// length, the payload.
package frame

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Write writes one frame in a single write, refusing a payload longer than
// max.
func Write(w io.Writer, typ byte, payload []byte, max uint32) error {
	if uint64(len(payload)) > uint64(max) {
		return fmt.Errorf("frame of %d bytes exceeds %d", len(payload), max)
	}
	buf := make([]byte, 5, 5+len(payload))
	buf[0] = typ
	binary.BigEndian.PutUint32(buf[1:], uint32(len(payload)))
	_, err := w.Write(append(buf, payload...))
	return err
}

// Read reads one frame, refusing a payload longer than max before
// allocating it. It returns io.EOF only when the stream ended before a
// frame began, io.ErrUnexpectedEOF when it ended inside one.
func Read(r io.Reader, max uint32) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > max {
		return 0, nil, fmt.Errorf("frame of %d bytes exceeds %d", n, max)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return hdr[0], payload, nil
}
