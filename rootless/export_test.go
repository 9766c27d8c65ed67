package rootless

import "os"

// ExecOpeningPidfd is Exec with open in place of pidfd_open, to start it
// as on kernels without pidfd_open or without setns of a pidfd.
func ExecOpeningPidfd(open func(pid, flags int) (int, error), program string, t Target, p InitProcess,
	stdio [3]*os.File, run func() (*ExecProgram, error)) (*ExecSession, error) {
	return execJoin(Join{Program: program, Pid: t.Pid, Namespaces: t.Namespaces, Stage: StageExec, Fork: true,
		Stdio: stdio, Config: ExecConfig{Process: p}, Run: run, pidfdOpen: open})
}
