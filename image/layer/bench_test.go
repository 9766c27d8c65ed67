package layer

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
)

// BenchmarkApply unpacks a rootfs-sized tar: NOOK_BENCH_TAR names a real one
// (e.g. `tar -C / -cf x.tar usr/lib/python3`), else 2000 files of 50 KB in
// 100 directories are generated.
func BenchmarkApply(b *testing.B) {
	var data []byte
	if f := os.Getenv("NOOK_BENCH_TAR"); f != "" {
		var err error
		if data, err = os.ReadFile(f); err != nil {
			b.Fatal(err)
		}
	} else {
		var ents []ent
		body := strings.Repeat("x", 50<<10)
		for d := range 100 {
			ents = append(ents, dirEnt(fmt.Sprintf("d%d/", d), 0o755))
			for f := range 20 {
				ents = append(ents, reg(fmt.Sprintf("d%d/f%d", d, f), body, 0o644))
			}
		}
		data = mkTar(b, ents...)
	}
	b.SetBytes(int64(len(data)))
	base := b.TempDir()
	b.ResetTimer()
	for i := range b.N {
		dir := fmt.Sprintf("%s/%d", base, i)
		if err := os.Mkdir(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		if _, err := Apply(bytes.NewReader(data), dir, ApplyOptions{Chown: os.Geteuid() == 0}); err != nil {
			b.Fatal(err)
		}
	}
}
