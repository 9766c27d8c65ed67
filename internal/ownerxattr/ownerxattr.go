// Package ownerxattr is the owner a file was meant to have, kept in an
// extended attribute where the user namespace cannot give it that owner
// (single-id mode): user.rootlesscontainers, the format umoci and PRoot
// share (rootless-containers/proto: message Resource { uint32 uid = 1;
// uint32 gid = 2; }), encoded as proto3 does, zero fields left out.
package ownerxattr

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Name is the attribute's name.
const Name = "user.rootlesscontainers"

// ErrMalformed is an attribute value that is not the message.
var ErrMalformed = errors.New("malformed " + Name + " value")

// Encode gives the attribute's value for uid:gid.
func Encode(uid, gid uint32) []byte {
	var b []byte
	if uid != 0 {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(uid))
	}
	if gid != 0 {
		b = protowire.AppendTag(b, 2, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(gid))
	}
	return b
}

// Decode reads the owner from an attribute value; unknown fields are
// skipped, as protobuf readers do.
func Decode(b []byte) (uid, gid uint32, err error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, 0, fmt.Errorf("%w: %w", ErrMalformed, protowire.ParseError(n))
		}
		b = b[n:]
		if (num == 1 || num == 2) && typ == protowire.VarintType {
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return 0, 0, fmt.Errorf("%w: %w", ErrMalformed, protowire.ParseError(m))
			}
			if num == 1 {
				uid = uint32(v)
			} else {
				gid = uint32(v)
			}
			b = b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return 0, 0, fmt.Errorf("%w: %w", ErrMalformed, protowire.ParseError(m))
		}
		b = b[m:]
	}
	return uid, gid, nil
}
