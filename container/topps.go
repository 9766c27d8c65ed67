package container

import (
	"bytes"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
)

// ErrNoPIDColumn is returned by Top when ps's options leave out the PID
// column, by which the container's processes are told from the host's.
var ErrNoPIDColumn = errors.New("ps output has no PID column")

// Top runs the host's ps with psArgs, as Docker's `top CTR [ps OPTIONS]`
// does, and keeps the lines of the container's processes: ps's column
// titles and, per process, one cell per title, the last holding the rest
// of the line (the command and its arguments). Pids are the host's.
func (m *Manager) Top(c *Container, psArgs []string) (titles []string, rows [][]string, err error) {
	procs, err := m.Processes(c)
	if err != nil {
		return nil, nil, err
	}
	pids := make([]string, len(procs))
	for i, p := range procs {
		pids[i] = strconv.Itoa(p.Pid)
	}
	// -q asks ps for these processes alone; some options (the forest
	// listing, f) refuse it, and then ps lists every process.
	out, err := runPs(append(slices.Clone(psArgs), "-q", strings.Join(pids, ",")))
	if err != nil {
		if out, err = runPs(psArgs); err != nil {
			return nil, nil, err
		}
	}
	return parsePs(out, procs)
}

func runPs(args []string) ([]byte, error) {
	cmd := exec.Command("ps", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("running ps %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// parsePs keeps the lines of ps's output whose PID is one of procs.
func parsePs(out []byte, procs []Proc) ([]string, [][]string, error) {
	lines := strings.Split(string(out), "\n")
	titles := strings.Fields(lines[0])
	pidCol := slices.Index(titles, "PID")
	if pidCol < 0 {
		return nil, nil, ErrNoPIDColumn
	}
	var rows [][]string
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) < len(titles) {
			continue // blank, or a column left empty: no pid to match
		}
		pid, err := strconv.Atoi(f[pidCol])
		if err != nil || !slices.ContainsFunc(procs, func(p Proc) bool { return p.Pid == pid }) {
			continue
		}
		row := f[: len(titles)-1 : len(titles)-1]
		rows = append(rows, append(row, strings.Join(f[len(titles)-1:], " ")))
	}
	return titles, rows, nil
}
