package seccomp

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"

	mobyseccomp "github.com/moby/profiles/seccomp"
	"golang.org/x/sys/unix"
)

// sysnum is one entry of the generated table of native syscalls.
type sysnum struct {
	name string
	nr   uint32
}

//go:generate go run mksysnum.go

// Number is the native number of the syscall name; ok is false for a
// name this architecture lacks.
func Number(name string) (nr uint32, ok bool) {
	i := sort.Search(len(syscalls), func(i int) bool { return syscalls[i].name >= name })
	if i < len(syscalls) && syscalls[i].name == name {
		return syscalls[i].nr, true
	}
	return 0, false
}

// rule is one rule for one syscall number.
type rule struct {
	nr   uint32
	args []Arg
	act  Action
}

// Compile builds the classic BPF filter of p for a process whose
// capabilities are caps (names such as "CAP_SYS_ADMIN"), with extra's
// rules checked before p's. The result goes to Install.
func Compile(p *Profile, caps []string, extra ...Rule) ([]unix.SockFilter, error) {
	def, err := action(p.DefaultAction, p.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("%w: defaultAction: %v", ErrProfile, err)
	}
	var rules []rule
	for _, r := range extra {
		rules = appendRules(rules, r.Names, r.Args, r.Action)
	}
	for i, s := range p.Syscalls {
		if s == nil {
			continue
		}
		names, err := ruleNames(s)
		if err != nil {
			return nil, fmt.Errorf("%w: syscalls[%d]: %v", ErrProfile, i, err)
		}
		keep, err := applies(s.Includes, s.Excludes, caps)
		if err != nil {
			return nil, err
		}
		if !keep {
			continue
		}
		act, err := action(s.Action, s.ErrnoRet)
		if err != nil {
			return nil, fmt.Errorf("%w: syscalls[%d]: %v", ErrProfile, i, err)
		}
		for _, a := range s.Args {
			if a.Index > 5 {
				return nil, fmt.Errorf("%w: syscalls[%d]: argument index %d is not 0 to 5", ErrProfile, i, a.Index)
			}
			if _, ok := compare[a.Op]; !ok {
				return nil, fmt.Errorf("%w: syscalls[%d]: unknown operator %q", ErrProfile, i, a.Op)
			}
		}
		// Two conditions on one argument are alternatives, not both
		// required (runc's reading, which Docker's profile relies on).
		if repeatsIndex(s.Args) {
			for _, a := range s.Args {
				rules = appendRules(rules, names, []Arg{a}, act)
			}
			continue
		}
		rules = appendRules(rules, names, s.Args, act)
	}
	for _, r := range rules {
		for _, a := range r.args {
			if _, ok := compare[a.Op]; !ok || a.Index > 5 {
				return nil, fmt.Errorf("%w: syscall %d: condition %v on argument %d", ErrProfile, r.nr, a.Op, a.Index)
			}
		}
	}
	raw, err := assemble(rules, def)
	if err != nil {
		return nil, fmt.Errorf("assembling seccomp filter: %w", err)
	}
	if len(raw) > unix.BPF_MAXINSNS {
		return nil, fmt.Errorf("%w: %d instructions, more than the kernel's %d", ErrProfile, len(raw), unix.BPF_MAXINSNS)
	}
	out := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		out[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	return out, nil
}

// ruleNames reads a rule's names, from the name older profiles give.
func ruleNames(s *mobyseccomp.Syscall) ([]string, error) {
	//lint:ignore SA1019 profiles written for older Docker still say name
	old := s.Name
	if old == "" {
		return s.Names, nil
	}
	if len(s.Names) != 0 {
		return nil, errors.New("both name and names")
	}
	return []string{old}, nil
}

func appendRules(rules []rule, names []string, args []Arg, act Action) []rule {
	for _, n := range names {
		// A profile names every architecture's calls; the ones this one
		// lacks are not an error.
		if nr, ok := Number(n); ok {
			rules = append(rules, rule{nr: nr, args: args, act: act})
		}
	}
	return rules
}

func repeatsIndex(args []Arg) bool {
	seen := map[uint]bool{}
	for _, a := range args {
		if seen[a.Index] {
			return true
		}
		seen[a.Index] = true
	}
	return false
}

// applies says whether a rule with these includes and excludes is part of
// the filter for caps on this machine, as Docker decides it.
func applies(inc, exc *filterCond, caps []string) (bool, error) {
	if exc != nil {
		if slices.Contains(exc.Arches, runtime.GOARCH) {
			return false, nil
		}
		for _, c := range exc.Caps {
			if slices.Contains(caps, c) {
				return false, nil
			}
		}
		if exc.MinKernel != nil {
			if ok, err := kernelAtLeast(exc.MinKernel.Kernel, exc.MinKernel.Major); err != nil || ok {
				return false, err
			}
		}
	}
	if inc != nil {
		if len(inc.Arches) > 0 && !slices.Contains(inc.Arches, runtime.GOARCH) {
			return false, nil
		}
		for _, c := range inc.Caps {
			if !slices.Contains(caps, c) {
				return false, nil
			}
		}
		if inc.MinKernel != nil {
			if ok, err := kernelAtLeast(inc.MinKernel.Kernel, inc.MinKernel.Major); err != nil || !ok {
				return false, err
			}
		}
	}
	return true, nil
}

// kernelAtLeast compares the running kernel's version with k.m.
func kernelAtLeast(k, m uint64) (bool, error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return false, fmt.Errorf("reading the kernel's version: %w", err)
	}
	rel := unix.ByteSliceToString(u.Release[:])
	parts := strings.SplitN(rel, ".", 3)
	if len(parts) < 2 {
		return false, fmt.Errorf("reading the kernel's version %q", rel)
	}
	rk, err1 := strconv.ParseUint(parts[0], 10, 64)
	rm, err2 := strconv.ParseUint(strings.TrimFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }), 10, 64)
	if err1 != nil || err2 != nil {
		return false, fmt.Errorf("reading the kernel's version %q", rel)
	}
	return rk > k || rk == k && rm >= m, nil
}
