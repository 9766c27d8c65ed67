package seccomp

// The filter's shape. Every conditional jump is followed by an
// unconditional one (JumpIf true→next, false→skip it; then ja label), so
// no jump is limited to 255 instructions and the program is laid out in
// one pass:
//
//	ld arch; arch ≠ native → ret ERRNO(ENOSYS)
//	ld nr;   [amd64] nr ≥ x32 bit → ret ERRNO(ENOSYS)
//	binary search over the rules' syscall numbers (jge at each node)
//	leaf:  nr ≠ N → ret default
//	       each rule with args: a failing comparison → next rule; ret action
//	       the first rule without args: ret action; none: ret default

import (
	"slices"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
	"maps"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// seccomp_data's layout: int nr; u32 arch; u64 ip; u64 args[6].
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

type label int

type asm struct {
	prog   []bpf.Instruction
	fixups map[int]label // index of a Jump → its target
	labels []int         // label → instruction index, -1 until set
}

func (a *asm) newLabel() label {
	a.labels = append(a.labels, -1)
	return label(len(a.labels) - 1)
}

func (a *asm) set(l label) { a.labels[l] = len(a.prog) }

func (a *asm) emit(ins ...bpf.Instruction) { a.prog = append(a.prog, ins...) }

// jumpIf goes to l when A cond val holds, else falls through.
func (a *asm) jumpIf(cond bpf.JumpTest, val uint32, l label) {
	a.emit(bpf.JumpIf{Cond: cond, Val: val, SkipTrue: 0, SkipFalse: 1})
	a.goTo(l)
}

func (a *asm) goTo(l label) {
	a.fixups[len(a.prog)] = l
	a.emit(bpf.Jump{})
}

func (a *asm) ret(act Action) { a.emit(bpf.RetConstant{Val: uint32(act)}) }

// load puts the high or low half of argument i in A (little-endian).
func (a *asm) load(i uint, high bool) {
	off := offArgs + 8*uint32(i)
	if high {
		off += 4
	}
	a.emit(bpf.LoadAbsolute{Off: off, Size: 4})
}

// compare holds, for each operator, the code that goes to fail unless
// argument c.Index compares as c says; otherwise it falls through.
var compare = map[specs.LinuxSeccompOperator]func(a *asm, c Arg, fail label){
	specs.OpEqualTo: func(a *asm, c Arg, fail label) {
		a.load(c.Index, true)
		a.jumpIf(bpf.JumpNotEqual, hi(c.Value), fail)
		a.load(c.Index, false)
		a.jumpIf(bpf.JumpNotEqual, lo(c.Value), fail)
	},
	specs.OpMaskedEqual: func(a *asm, c Arg, fail label) {
		a.load(c.Index, true)
		a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: hi(c.Value)})
		a.jumpIf(bpf.JumpNotEqual, hi(c.ValueTwo), fail)
		a.load(c.Index, false)
		a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: lo(c.Value)})
		a.jumpIf(bpf.JumpNotEqual, lo(c.ValueTwo), fail)
	},
	specs.OpNotEqual: func(a *asm, c Arg, fail label) {
		ok := a.newLabel()
		a.load(c.Index, true)
		a.jumpIf(bpf.JumpNotEqual, hi(c.Value), ok)
		a.load(c.Index, false)
		a.jumpIf(bpf.JumpEqual, lo(c.Value), fail)
		a.set(ok)
	},
	specs.OpGreaterThan:  ordered(bpf.JumpGreaterThan, bpf.JumpLessThan, bpf.JumpLessOrEqual),
	specs.OpGreaterEqual: ordered(bpf.JumpGreaterThan, bpf.JumpLessThan, bpf.JumpLessThan),
	specs.OpLessThan:     ordered(bpf.JumpLessThan, bpf.JumpGreaterThan, bpf.JumpGreaterOrEqual),
	specs.OpLessEqual:    ordered(bpf.JumpLessThan, bpf.JumpGreaterThan, bpf.JumpGreaterThan),
}

// ordered compares 64 bits as two halves: the high halves decide unless
// equal (pass when they compare as win, fail when as lose), then the low
// halves fail when they compare as loseLow.
func ordered(win, lose, loseLow bpf.JumpTest) func(a *asm, c Arg, fail label) {
	return func(a *asm, c Arg, fail label) {
		ok := a.newLabel()
		a.load(c.Index, true)
		a.jumpIf(win, hi(c.Value), ok)
		a.jumpIf(lose, hi(c.Value), fail)
		a.load(c.Index, false)
		a.jumpIf(loseLow, lo(c.Value), fail)
		a.set(ok)
	}
}

func hi(v uint64) uint32 { return uint32(v >> 32) }
func lo(v uint64) uint32 { return uint32(v) }

// assemble lays out the filter for rules, in order, and def for the rest.
func assemble(rules []rule, def Action) ([]bpf.Instruction, error) {
	byNr := map[uint32][]rule{}
	for _, r := range rules {
		byNr[r.nr] = append(byNr[r.nr], r)
	}
	for nr, rs := range byNr {
		// Rules with args first, each in its order; the first without
		// args ends the list. A syscall left with only the default is
		// not worth a leaf.
		cond := slices.DeleteFunc(slices.Clone(rs), func(r rule) bool { return len(r.args) == 0 })
		if i := slices.IndexFunc(rs, func(r rule) bool { return len(r.args) == 0 }); i >= 0 {
			cond = append(cond, rs[i])
		}
		if len(cond) == 1 && len(cond[0].args) == 0 && cond[0].act == def {
			delete(byNr, nr)
			continue
		}
		byNr[nr] = cond
	}
	nrs := slices.Sorted(maps.Keys(byNr))

	a := &asm{fixups: map[int]label{}}
	deflt, nosys := a.newLabel(), a.newLabel()
	a.emit(bpf.LoadAbsolute{Off: offArch, Size: 4})
	a.jumpIf(bpf.JumpNotEqual, auditArch, nosys)
	a.emit(bpf.LoadAbsolute{Off: offNr, Size: 4})
	if foreignBit != 0 {
		a.jumpIf(bpf.JumpGreaterOrEqual, foreignBit, nosys)
	}
	a.tree(nrs, byNr, deflt)
	a.set(deflt)
	a.ret(def)
	a.set(nosys)
	a.ret(Errno(unix.ENOSYS))

	for i, l := range a.fixups {
		a.prog[i] = bpf.Jump{Skip: uint32(a.labels[l] - i - 1)}
	}
	return a.prog, nil
}

// tree searches nrs (sorted) for A, the syscall number.
func (a *asm) tree(nrs []uint32, byNr map[uint32][]rule, deflt label) {
	if len(nrs) == 0 {
		a.goTo(deflt)
		return
	}
	if len(nrs) == 1 {
		a.leaf(nrs[0], byNr[nrs[0]], deflt)
		return
	}
	mid := len(nrs) / 2
	right := a.newLabel()
	a.jumpIf(bpf.JumpGreaterOrEqual, nrs[mid], right)
	a.tree(nrs[:mid], byNr, deflt)
	a.set(right)
	a.tree(nrs[mid:], byNr, deflt)
}

func (a *asm) leaf(nr uint32, rs []rule, deflt label) {
	a.jumpIf(bpf.JumpNotEqual, nr, deflt)
	for _, r := range rs {
		if len(r.args) == 0 {
			a.ret(r.act)
			return
		}
		next := a.newLabel()
		for _, c := range r.args {
			compare[c.Op](a, c, next)
		}
		a.ret(r.act)
		a.set(next)
	}
	a.goTo(deflt)
}
