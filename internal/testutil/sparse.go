package testutil

import (
	"archive/tar"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// SparseTar builds a one-entry tar holding name as a PAX 1.0 GNU sparse
// file of realsize bytes whose only data is data at offset off: a few
// hundred bytes of tar that claim as much as realsize. archive/tar cannot
// write sparse entries (it drops GNU.sparse.* records), so the PAX header
// is written as a plain entry and retyped.
func SparseTar(name string, realsize, off int64, data string) []byte {
	mapData := "1\n" + strconv.FormatInt(off, 10) + "\n" + strconv.Itoa(len(data)) + "\n"
	body := mapData + strings.Repeat("\x00", 512-len(mapData)) + data
	records := paxRecord("GNU.sparse.major", "1") + paxRecord("GNU.sparse.minor", "0") +
		paxRecord("GNU.sparse.name", name) + paxRecord("GNU.sparse.realsize", strconv.FormatInt(realsize, 10))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	// Writes to a bytes.Buffer of well-formed USTAR headers cannot fail.
	_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "PaxHeaders/" + name, Size: int64(len(records)), Format: tar.FormatUSTAR})
	_, _ = tw.Write([]byte(records))
	_ = tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "GNUSparseFile.0/" + name, Size: int64(len(body)), Mode: 0o644, Format: tar.FormatUSTAR})
	_, _ = tw.Write([]byte(body))
	_ = tw.Close()
	out := buf.Bytes()
	Retype(out[:512], tar.TypeXHeader)
	return out
}

func paxRecord(k, v string) string {
	// "LEN KEY=VALUE\n" where LEN counts itself.
	rest := " " + k + "=" + v + "\n"
	n := len(rest) + 1
	for len(strconv.Itoa(n))+len(rest) != n {
		n++
	}
	return strconv.Itoa(n) + rest
}

// Retype changes a tar header block's type flag and fixes its checksum.
func Retype(blk []byte, typ byte) {
	blk[156] = typ
	copy(blk[148:156], "        ")
	sum := 0
	for _, c := range blk {
		sum += int(c)
	}
	copy(blk[148:156], fmt.Sprintf("%06o\x00 ", sum))
}
