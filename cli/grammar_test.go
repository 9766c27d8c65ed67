package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// wholeCLI is the grammar before grammarFor: every verb, always.
func wholeCLI(c *CLI, _ []string) (any, []kong.Option) { return c, nil }

// TestGrammarForMatchesWholeCLI checks that parsing with one verb's model
// behaves exactly as with the whole CLI: same output, same exit code, for
// help, usage errors and the globals in every position. Were a verb's name
// or help taken wrongly, its help or errors would differ.
func TestGrammarForMatchesWholeCLI(t *testing.T) {
	root := t.TempDir()
	var cases [][]string
	for _, verb := range verbNames(t) {
		cases = append(cases,
			[]string{verb, "--help"},
			[]string{"--root", root, verb, "--bogus-flag"},
			[]string{"--log-level=error", verb, "-h"},
		)
	}
	cases = append(cases,
		[]string{"--root", root, "ps", "-a"},
		[]string{"--root=" + root, "images", "-q"},
		[]string{"--root", root, "--log-level", "debug", "ps"},
		[]string{"ps", "--root", root, "-a"},
		[]string{"container", "ls", "--help"},
		[]string{"image", "rm"},
		[]string{"run", "--rm"},
		[]string{"--version"},
		[]string{"-h"},
		[]string{},
		[]string{"bogus"},
		[]string{"runn", "x"},
		[]string{"--root"},
		[]string{"--root", root},
		[]string{"--", "ps"},
	)
	for _, args := range cases {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var wantOut, wantErr, gotOut, gotErr bytes.Buffer
			want := runWith(wholeCLI, args, strings.NewReader(""), &wantOut, &wantErr)
			got := runWith(grammarFor, args, strings.NewReader(""), &gotOut, &gotErr)
			if got != want || gotOut.String() != wantOut.String() || gotErr.String() != wantErr.String() {
				t.Errorf("exit %d, stdout %q, stderr %q; whole CLI: exit %d, stdout %q, stderr %q",
					got, gotOut.String(), gotErr.String(), want, wantOut.String(), wantErr.String())
			}
		})
	}
}

// TestGrammarForPicksOneVerb checks that a named verb gets a model of its
// own (the point of grammarFor) and that anything else gets every verb.
func TestGrammarForPicksOneVerb(t *testing.T) {
	for _, tc := range []struct {
		args []string
		verb string // "" for the whole CLI
	}{
		{[]string{"run", "--rm", "img"}, "run"},
		{[]string{"--root", "/s", "ps"}, "ps"},
		{[]string{"--root=/s", "--log-level", "info", "image", "ls"}, "image"},
		{[]string{"--log-level=debug", "container", "prune"}, "container"},
		{[]string{"--help"}, ""},
		{[]string{"--version", "ps"}, ""},
		{[]string{"nosuchverb"}, ""},
		{[]string{"--", "ps"}, ""},
		{nil, ""},
	} {
		var c CLI
		model, opts := grammarFor(&c, tc.args)
		if tc.verb == "" {
			if model != &c || opts != nil {
				t.Errorf("%q: got a one-verb model, want the whole CLI", tc.args)
			}
			continue
		}
		if model != &c.Globals || len(opts) != 1 {
			t.Fatalf("%q: got the whole CLI, want the %s model", tc.args, tc.verb)
		}
		k, err := kong.New(model, opts...)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(k.Model.Children); n != 1 || k.Model.Children[0].Name != tc.verb {
			t.Errorf("%q: model has %d verbs, want only %s", tc.args, n, tc.verb)
		}
	}
	// Every verb gets its own model: one whose kong name grammarFor does
	// not derive would silently fall back to the whole CLI.
	for _, verb := range verbNames(t) {
		var c CLI
		if model, _ := grammarFor(&c, []string{verb}); model != &c.Globals {
			t.Errorf("verb %s: got the whole CLI, want its own model", verb)
		}
	}
}

// verbNames lists the verbs of the whole CLI as kong names them.
func verbNames(t *testing.T) []string {
	var c CLI
	k, err := kong.New(&c)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range k.Model.Children {
		names = append(names, n.Name)
	}
	if len(names) < 30 {
		t.Fatalf("only %d verbs: %v", len(names), names)
	}
	return names
}
