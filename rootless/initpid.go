package rootless

// Pid is the pid of init's process, launched but not yet started, in the
// caller's pid namespace: the shim sets its resource limits (--ulimit)
// before init starts the payload, which inherits them.
func (l *LaunchedInit) Pid() int { return l.l.p.Pid() }
