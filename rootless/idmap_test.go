package rootless

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseSubIDs(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		want       []subRange
	}{
		{"by name", "bob:100000:65536\n", []subRange{{100000, 65536}}},
		{"by uid", "1001:200000:1000\n", []subRange{{200000, 1000}}},
		{"none", "alice:100000:65536\n", nil},
		{"empty file", "", nil},
		{"several ranges in order", "bob:300000:10\nalice:1:5\n1001:100000:20\n", []subRange{{300000, 10}, {100000, 20}}},
		{"comments and blanks", "# bob:1:1\n\n  bob:500000:7  \n", []subRange{{500000, 7}}},
		{"no trailing newline", "bob:100000:65536", []subRange{{100000, 65536}}},
		{"crlf", "bob:100000:65536\r\n", []subRange{{100000, 65536}}},
		{"prefix of a name is no match", "bobby:100000:65536\nbo:1:1\n", nil},
		{"malformed lines skipped", "bob\nbob:x:1\nbob:1:y\nbob:1\nbob:-1:5\nbob:5:0\nbob:7:3\n", []subRange{{7, 3}}},
		{"extra field", "bob:1:2:3\n", nil},
		{"host range past 2^32-1", "bob:4294967290:10\nbob:4294967280:10\n", []subRange{{4294967280, 10}}},
		{"namespace past 2^32-1", "bob:1:4294967294\nbob:1:1\n", []subRange{{1, 4294967294}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := parseSubIDs([]byte(tc.data), "bob", 1001)
			if len(got) == 0 && len(tc.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("parseSubIDs(%q) = %v, want %v", tc.data, got, tc.want)
			}
		})
	}
}

func TestIDMapsFor(t *testing.T) {
	dir := t.TempDir()
	write := func(name, data string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sub := write("sub", "bob:100000:65536\nbob:300000:100\n")
	other := write("other", "alice:100000:65536\n")
	found := func(tool string) (string, string) { return "/usr/bin/" + tool, "" }
	notFound := func(tool string) (string, string) { return "", tool + " not found: install uidmap" }
	single := IDMaps{UIDs: []IDMap{{0, 1001, 1}}, GIDs: []IDMap{{0, 1002, 1}}}
	full := []IDMap{{0, 1001, 1}, {1, 100000, 65536}, {65537, 300000, 100}}
	fullG := []IDMap{{0, 1002, 1}, {1, 100000, 65536}, {65537, 300000, 100}}
	withWhy := func(why string) IDMaps { m := single; m.Why = why; return m }
	for _, tc := range []struct {
		name string
		host idHost
		want IDMaps
	}{
		{"full", idHost{1001, 1002, "bob", sub, sub, found, "", ""}, IDMaps{UIDs: full, GIDs: fullG, Full: true}},
		{"no subuid entry", idHost{1001, 1002, "bob", other, sub, found, "", ""},
			withWhy("no entry for user bob in " + other)},
		{"no subgid entry", idHost{1001, 1002, "bob", sub, other, found, "", ""},
			withWhy("no entry for user bob in " + other)},
		{"no subuid file", idHost{1001, 1002, "bob", dir + "/nope", sub, found, "", ""},
			withWhy(dir + "/nope does not exist")},
		{"no newuidmap", idHost{1001, 1002, "bob", sub, sub, notFound, "", ""},
			withWhy("newuidmap not found: install uidmap")},
		{"root", idHost{0, 0, "root", other, other, notFound, "", ""},
			IDMaps{UIDs: []IDMap{{0, 0, maxID}}, GIDs: []IDMap{{0, 0, maxID}}, Full: true}},
		{"root of the initial namespace", idHost{0, 0, "root", other, other, notFound, write("init", "         0          0 4294967295\n"), write("init", "         0          0 4294967295\n")},
			IDMaps{UIDs: []IDMap{{0, 0, maxID}}, GIDs: []IDMap{{0, 0, maxID}}, Full: true}},
		// Root of a user namespace maps only the ids it holds: asking the
		// kernel for the whole range fails with EPERM.
		{"root under unshare -r", idHost{0, 0, "root", other, other, notFound, write("one", "0 1001 1\n"), write("one", "0 1001 1\n")},
			IDMaps{UIDs: []IDMap{{0, 0, 1}}, GIDs: []IDMap{{0, 0, 1}}}},
		{"root of a rootless container", idHost{0, 0, "root", other, other, notFound, write("sub2", "0 1001 1\n1 100000 65536\n"), write("sub2", "0 1001 1\n1 100000 65536\n")},
			IDMaps{UIDs: []IDMap{{0, 0, 1}, {1, 1, 65536}}, GIDs: []IDMap{{0, 0, 1}, {1, 1, 65536}}, Full: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := idMapsFor(tc.host)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestMapperArgs(t *testing.T) {
	got := strings.Join(mapperArgs([]IDMap{{0, 1001, 1}, {1, 100000, 65536}}), " ")
	if want := "0 1001 1 1 100000 65536"; got != want {
		t.Errorf("mapperArgs = %q, want %q", got, want)
	}
}

func FuzzParseSubIDs(f *testing.F) {
	for _, s := range []string{
		"bob:100000:65536\n", "1001:1:1\nbob:2:3", "# c\n\nbob:4294967290:10\n",
		"bob:1:4294967294\nbob:1:1\n", "bob::\n:::\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		next := 1
		for _, r := range parseSubIDs(data, "bob", 1001) {
			if r.start < 0 || r.count <= 0 || r.start+r.count > maxID {
				t.Fatalf("bad range %+v from %q", r, data)
			}
			next += r.count
		}
		if next > maxID {
			t.Fatalf("ranges reach past the largest id: %d from %q", next, data)
		}
	})
}
