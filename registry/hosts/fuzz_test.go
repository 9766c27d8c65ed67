package hosts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
)

// FuzzConf: any registries.conf either is refused as ErrConf or resolves
// every reference without panic to routes that end with the registry
// itself (mirrors only before it, only for pulls), and a push goes to the
// reference as named.
func FuzzConf(f *testing.F) {
	for _, seed := range []struct{ conf, ref string }{
		{testConf, "docker.io/library/alpine:3"},
		{testConf, "git.corp.example:443/x@sha256:00"},
		{testConf, "split.example/a@sha256:00"},
		{"[registries.insecure]\nregistries = ['a.io']\n", "a.io/x"},
		{"[[registry]]\nprefix = \"*.x.io\"\n[[registry.mirror]]\nlocation = \"m\"\n", "a.x.io:1/b"},
		{"[[registry]]\nprefix = \"a.io/b:t\"\nlocation = \"c.io\"\n", "a.io/b:t"},
		{"", "busybox"},
	} {
		f.Add(seed.conf, seed.ref)
	}
	f.Fuzz(func(t *testing.T, text, ref string) {
		regs, err := parseConf([]byte(text))
		if err != nil {
			if !errors.Is(err, ErrConf) {
				t.Fatalf("error %v is not ErrConf", err)
			}
			return
		}
		c := &conf{registries: regs}
		for _, r := range regs {
			if n := matchLen(ref, r.Prefix); n > len(ref) {
				t.Fatalf("matchLen(%q, %q) = %d, past the end", ref, r.Prefix, n)
			}
		}
		pull, perr := c.routes(ref, false)
		push, serr := c.routes(ref, true)
		if errors.Is(perr, ErrBlocked) != errors.Is(serr, ErrBlocked) {
			t.Fatalf("blocked for pull %v, for push %v", perr, serr)
		}
		if perr != nil {
			return
		}
		if len(pull) == 0 || pull[len(pull)-1].mirror {
			t.Fatalf("pull routes %+v do not end with the registry", pull)
		}
		for _, r := range pull[:len(pull)-1] {
			if !r.mirror {
				t.Fatalf("pull routes %+v: a second registry", pull)
			}
		}
		if len(push) != 1 || push[0].ref != ref || push[0].mirror {
			t.Fatalf("push routes %+v for %q", push, ref)
		}
		c.insecureHost(hostOf(ref))
	})
}

// FuzzAuthFile: saving credentials into any auth file either fails and
// leaves it byte for byte as it was, or leaves a 0600 file holding every
// key and every other registry's entry it had, from which the
// credentials read back; removing them takes out only them.
func FuzzAuthFile(f *testing.F) {
	f.Add(`{"auths":{"x.io":{"auth":"eDp5"}},"psFormat":"t","HttpHeaders":{"A":"b"}}`, "r.io:5000", "me", "pw")
	f.Add(`{}`, "docker.io", "u", "p")
	f.Add(``, "r.io", "u", "")
	f.Add(`{"auths":{"https://r.io/":{"auth":"bzpw"}}}`, "r.io", "n", "p")
	f.Add(`{"auths":{"r.io":{"identitytoken":"t"}},"proxies":{"default":{"httpProxy":"h"}}}`, "r.io", "u:x", "p")
	f.Add(`{"auths":[]}`, "r.io", "u", "p")
	f.Fuzz(func(t *testing.T, content, host, user, pass string) {
		var before map[string]any
		if json.Unmarshal([]byte(content), &before) == nil {
			if _, ok := before["credsStore"]; ok {
				return // would run a credential helper
			}
			if _, ok := before["credHelpers"]; ok {
				return
			}
		}
		if host == "" || !utf8.ValidString(host) || (user == "" && pass == "") {
			return // no registry is named so; JSON keys are UTF-8
		}
		file := filepath.Join(t.TempDir(), "auth.json")
		if err := os.WriteFile(file, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		key := credentials.ServerAddressFromRegistry(host)
		store, err := writeStore(Options{AuthFile: file})
		if err != nil {
			return // not an auth file: refused when read
		}
		cred := auth.Credential{Username: user, Password: pass}
		if err := store.Put(ctx, key, cred); err != nil {
			if after, _ := os.ReadFile(file); !bytes.Equal(after, []byte(content)) {
				t.Fatalf("a failed save changed the file:\n%s\nto\n%s", content, after)
			}
			return
		}
		fi, err := os.Stat(file)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("after save: %v, mode %v", err, fi.Mode().Perm())
		}
		after := readJSON(t, file)
		for k, v := range before {
			if k == "auths" {
				continue
			}
			if !reflect.DeepEqual(after[k], v) {
				t.Fatalf("key %q was %v, is %v", k, v, after[k])
			}
		}
		beforeAuths, _ := before["auths"].(map[string]any)
		afterAuths, _ := after["auths"].(map[string]any)
		for k, v := range beforeAuths {
			if k != key && !reflect.DeepEqual(afterAuths[k], v) {
				t.Fatalf("auths[%q] was %v, is %v", k, v, afterAuths[k])
			}
		}
		read, err := readStore(Options{AuthFile: file})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := read.Get(ctx, key); err != nil || got != cred {
			t.Fatalf("read back %+v, %v; want %+v", got, err, cred)
		}
		if err := store.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
		afterAuths, _ = readJSON(t, file)["auths"].(map[string]any)
		if _, ok := afterAuths[key]; ok {
			t.Fatalf("auths[%q] survived the delete", key)
		}
		for k := range beforeAuths {
			if _, ok := afterAuths[k]; k != key && !ok {
				t.Fatalf("the delete took auths[%q] too", k)
			}
		}
	})
}

func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("not JSON after save: %v\n%s", err, data)
	}
	if strings.TrimSpace(string(data)) == "" {
		t.Fatal("empty after save")
	}
	return m
}
