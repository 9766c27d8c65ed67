package tests

import (
	"reflect"
	"testing"
)

// field is one value an assertion compares: what it is, what the test
// got, what it wants.
type field struct {
	name      string
	got, want any
}

// wantFields reports, under what, each field that differs from its want,
// so a failure says which part broke rather than that some part did.
func wantFields(t testing.TB, what string, fields ...field) {
	t.Helper()
	for _, f := range fields {
		if !reflect.DeepEqual(f.got, f.want) {
			t.Errorf("%s: %s = %#v, want %#v", what, f.name, f.got, f.want)
		}
	}
}
