package container

import (
	"errors"
	"reflect"
	"testing"
)

func TestParsePs(t *testing.T) {
	procs := []Proc{{Pid: 10}, {Pid: 12}}
	for _, tc := range []struct {
		name, out string
		titles    []string
		rows      [][]string
		err       error
	}{
		{name: "aux", out: "USER PID %CPU COMMAND\nroot 1 0.0 /sbin/init\n1001 10 0.5 sleep 1000\n100000 12 0.0 sh -c x y\n",
			titles: []string{"USER", "PID", "%CPU", "COMMAND"},
			rows:   [][]string{{"1001", "10", "0.5", "sleep 1000"}, {"100000", "12", "0.0", "sh -c x y"}}},
		{name: "pid last", out: "  USER   PID\nroot 1\nx 12\n\n", titles: []string{"USER", "PID"}, rows: [][]string{{"x", "12"}}},
		{name: "no pid column", out: "USER COMMAND\nroot sh\n", err: ErrNoPIDColumn},
		{name: "empty", out: "", err: ErrNoPIDColumn},
		{name: "short line", out: "PID TTY CMD\n10\n12 ? sh\n", titles: []string{"PID", "TTY", "CMD"}, rows: [][]string{{"12", "?", "sh"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			titles, rows, err := parsePs([]byte(tc.out), procs)
			if !errors.Is(err, tc.err) || !reflect.DeepEqual(titles, tc.titles) || !reflect.DeepEqual(rows, tc.rows) {
				t.Errorf("got %q %q %v, want %q %q %v", titles, rows, err, tc.titles, tc.rows, tc.err)
			}
		})
	}
}

func FuzzParsePs(f *testing.F) {
	f.Add("USER PID COMMAND\nroot 10 sh -c x\n")
	f.Add("PID\n12\n\n")
	f.Fuzz(func(t *testing.T, out string) {
		titles, rows, err := parsePs([]byte(out), []Proc{{Pid: 10}, {Pid: 12}})
		for _, r := range rows {
			if err != nil || len(r) != len(titles) {
				t.Fatalf("row %q against titles %q (err %v)", r, titles, err)
			}
		}
	})
}
