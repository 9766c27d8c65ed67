// Package magic names the compression of a stream (gzip, zstd, bzip2, xz)
// by its leading bytes. It links no codec: code that only has to name a
// compression, such as the layer unpacker's error hint, which also runs in
// the container's init, stays as small to start as that init must be.
package magic

import (
	"bytes"
	"fmt"
	"io"
)

// Kind is a compression format.
type Kind int

// The formats Detect recognises.
const (
	None Kind = iota
	Gzip
	Zstd
	Bzip2
	Xz
)

func (k Kind) String() string {
	switch k {
	case None:
		return "none"
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	case Bzip2:
		return "bzip2"
	case Xz:
		return "xz"
	}
	return fmt.Sprintf("compression(%d)", int(k))
}

// magics are the leading bytes of each format's stream.
var magics = [...]struct {
	kind  Kind
	magic []byte
}{
	{Gzip, []byte{0x1f, 0x8b}},
	{Zstd, []byte{0x28, 0xb5, 0x2f, 0xfd}},
	{Bzip2, []byte("BZh")},
	{Xz, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}},
}

// maxMagic is the longest magic: the most Detect has to peek at.
const maxMagic = 6

// Detect peeks at the first bytes of r and says which compression they
// announce. The returned reader yields the whole stream, the peeked bytes
// included. A stream shorter than any magic is None, not an error.
func Detect(r io.Reader) (Kind, io.Reader, error) {
	head := make([]byte, maxMagic)
	n, err := io.ReadFull(r, head)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return None, nil, fmt.Errorf("detecting compression: %w", err)
	}
	head = head[:n]
	replay := io.MultiReader(bytes.NewReader(head), r)
	for _, m := range magics {
		if bytes.HasPrefix(head, m.magic) {
			return m.kind, replay, nil
		}
	}
	return None, replay, nil
}
