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
	"cmp"
	"slices"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// seccomp_data's layout: int nr; u32 arch; u64 ip; u64 args[6].
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

type label int

type fixup struct {
	at int // index of a Jump
	to label
}

type asm struct {
	prog   []bpf.RawInstruction
	err    error   // the first instruction x/net/bpf would not assemble
	fixups []fixup // the Jumps, resolved once every label is set
	labels []int   // label → instruction index, -1 until set
}

func (a *asm) newLabel() label {
	a.labels = append(a.labels, -1)
	return label(len(a.labels) - 1)
}

func (a *asm) set(l label) { a.labels[l] = len(a.prog) }

// emit appends an instruction as x/net/bpf assembles it; called with
// concrete instruction types, which then need no allocation each.
func (a *asm) emit(r bpf.RawInstruction, err error) {
	if err != nil && a.err == nil {
		a.err = err
	}
	a.prog = append(a.prog, r)
}

// jumpIf goes to l when A cond val holds, else falls through.
func (a *asm) jumpIf(cond bpf.JumpTest, val uint32, l label) {
	a.emit(bpf.JumpIf{Cond: cond, Val: val, SkipTrue: 0, SkipFalse: 1}.Assemble())
	a.goTo(l)
}

func (a *asm) goTo(l label) {
	a.fixups = append(a.fixups, fixup{len(a.prog), l})
	a.emit(bpf.Jump{}.Assemble())
}

func (a *asm) ret(act Action) { a.emit(bpf.RetConstant{Val: uint32(act)}.Assemble()) }

// load puts the high or low half of argument i in A (little-endian).
func (a *asm) load(i uint, high bool) {
	off := offArgs + 8*uint32(i)
	if high {
		off += 4
	}
	a.emit(bpf.LoadAbsolute{Off: off, Size: 4}.Assemble())
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
		a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: hi(c.Value)}.Assemble())
		a.jumpIf(bpf.JumpNotEqual, hi(c.ValueTwo), fail)
		a.load(c.Index, false)
		a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: lo(c.Value)}.Assemble())
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
func assemble(rules []rule, def Action) ([]bpf.RawInstruction, error) {
	leaves := leavesOf(rules, def)
	// Sized for Docker's profile, which takes some 1800 instructions.
	a := &asm{prog: make([]bpf.RawInstruction, 0, 2048), fixups: make([]fixup, 0, 1024), labels: make([]int, 0, 512)}
	deflt, nosys := a.newLabel(), a.newLabel()
	a.emit(bpf.LoadAbsolute{Off: offArch, Size: 4}.Assemble())
	a.jumpIf(bpf.JumpNotEqual, auditArch, nosys)
	a.emit(bpf.LoadAbsolute{Off: offNr, Size: 4}.Assemble())
	if foreignBit != 0 {
		a.jumpIf(bpf.JumpGreaterOrEqual, foreignBit, nosys)
	}
	a.tree(leaves, deflt)
	a.set(deflt)
	a.ret(def)
	a.set(nosys)
	a.ret(Errno(unix.ENOSYS))

	for _, f := range a.fixups {
		a.prog[f.at], _ = bpf.Jump{Skip: uint32(a.labels[f.to] - f.at - 1)}.Assemble()
	}
	return a.prog, a.err
}

// tree searches nrs (sorted) for A, the syscall number.
func (a *asm) tree(leaves []leaf, deflt label) {
	if len(leaves) == 0 {
		a.goTo(deflt)
		return
	}
	if len(leaves) == 1 {
		a.leaf(leaves[0], deflt)
		return
	}
	mid := len(leaves) / 2
	right := a.newLabel()
	a.jumpIf(bpf.JumpGreaterOrEqual, leaves[mid].nr, right)
	a.tree(leaves[:mid], deflt)
	a.set(right)
	a.tree(leaves[mid:], deflt)
}

// leaf is one syscall's rules, in the order the filter checks them.
type leaf struct {
	nr    uint32
	rules []rule
}

// leavesOf groups rules by syscall, in number order. Within a syscall,
// rules with args come first, each in its order; the first without args
// ends the list. A syscall left with only the default is not worth a
// leaf.
func leavesOf(rules []rule, def Action) []leaf {
	// Sorting the rules' positions, not the rules, keeps it cheap.
	pos := make([]int32, len(rules))
	for i := range pos {
		pos[i] = int32(i)
	}
	slices.SortFunc(pos, func(x, y int32) int {
		return cmp.Or(cmp.Compare(rules[x].nr, rules[y].nr), cmp.Compare(x, y))
	})
	sorted := make([]rule, len(rules))
	for i, p := range pos {
		sorted[i] = rules[p]
	}
	rules = sorted
	var leaves []leaf
	ordered := make([]rule, 0, len(rules))
	for len(rules) > 0 {
		n := 1
		for n < len(rules) && rules[n].nr == rules[0].nr {
			n++
		}
		group := rules[:n]
		rules = rules[n:]
		start := len(ordered)
		for _, r := range group {
			if len(r.args) > 0 {
				ordered = append(ordered, r)
			}
		}
		if i := slices.IndexFunc(group, func(r rule) bool { return len(r.args) == 0 }); i >= 0 {
			if start == len(ordered) && group[i].act == def {
				continue
			}
			ordered = append(ordered, group[i])
		}
		leaves = append(leaves, leaf{nr: group[0].nr, rules: ordered[start:len(ordered):len(ordered)]})
	}
	return leaves
}

func (a *asm) leaf(l leaf, deflt label) {
	a.jumpIf(bpf.JumpNotEqual, l.nr, deflt)
	for _, r := range l.rules {
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
