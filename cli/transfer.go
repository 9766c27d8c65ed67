package cli

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	units "github.com/docker/go-units"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"nook/registry"
)

// transferView shows a pull's or a push's progress as Docker does: on a
// terminal one line per layer redrawn in place ("a1b2c3d4e5f6: Downloading
// 12.3MB/45.6MB"); elsewhere one line per layer event, byte counts left
// out; nothing when quiet. Events arrive from several goroutines.
type transferView struct {
	w     io.Writer
	p     *mpb.Progress // nil when not a terminal
	mu    sync.Mutex
	lines map[string]*transferLine
}

type transferLine struct {
	bar *mpb.Bar
	mu  sync.Mutex // guards ev, which mpb's goroutine reads to draw the line
	ev  registry.Event
}

// newTransferView returns nil when quiet; its methods accept a nil view.
func (g *Globals) newTransferView(quiet bool) *transferView {
	if quiet {
		return nil
	}
	v := &transferView{w: g.Stderr, lines: map[string]*transferLine{}}
	if f, ok := g.Stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		v.p = mpb.New(mpb.WithOutput(f), mpb.WithWidth(40), mpb.WithRefreshRate(100*time.Millisecond))
	}
	return v
}

// Event shows one event.
func (v *transferView) Event(e registry.Event) {
	if v == nil {
		return
	}
	if v.p == nil {
		if e.Status == registry.StatusDownloading || e.Status == registry.StatusPushing || e.Status == registry.StatusExtracting && e.Current < e.Total {
			return // per byte: a terminal's business
		}
		v.mu.Lock()
		defer v.mu.Unlock()
		fmt.Fprintf(v.w, "%s: %s\n", e.ID, eventText(e, false))
		return
	}
	v.mu.Lock()
	l, ok := v.lines[e.ID]
	if !ok {
		l = &transferLine{ev: e}
		v.lines[e.ID] = l
	}
	v.mu.Unlock()
	if !ok {
		// Not under a lock the drawing takes: mpb's New waits for the
		// goroutine that calls the decorators.
		l.bar = v.p.New(0, mpb.NopStyle(), mpb.PrependDecorators(decor.Any(func(decor.Statistics) string {
			l.mu.Lock()
			defer l.mu.Unlock()
			return l.ev.ID + ": " + eventText(l.ev, true)
		})))
		return
	}
	l.mu.Lock()
	l.ev = e
	l.mu.Unlock()
}

// eventText is an event as Docker words it, with byte counts on a terminal.
func eventText(e registry.Event, counts bool) string {
	s := e.Status
	if e.Status == registry.StatusMounted && e.Detail != "" {
		s += " " + e.Detail
	}
	if counts && e.Total > 0 && (e.Status == registry.StatusDownloading || e.Status == registry.StatusPushing || e.Status == registry.StatusExtracting) {
		s += fmt.Sprintf(" %s/%s", units.HumanSizeWithPrecision(float64(e.Current), 3), units.HumanSizeWithPrecision(float64(e.Total), 3))
	}
	return s
}

// Done leaves the last state of each line on the terminal.
func (v *transferView) Done() {
	if v == nil || v.p == nil {
		return
	}
	v.mu.Lock()
	bars := make([]*mpb.Bar, 0, len(v.lines))
	for _, l := range v.lines {
		bars = append(bars, l.bar)
	}
	v.mu.Unlock()
	for _, b := range bars {
		b.Abort(false)
	}
	v.p.Wait()
}
