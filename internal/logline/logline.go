// Package logline is the slog handler of nook's programs on a terminal's
// stderr: warnings and errors in nook's own one-line form, "nook:
// warning: MSG (key=value, …)", each message once (unless debugging), so
// they read as the lines nook prints itself; debug and info records, which
// only --log-level asks for, in slog's text form.
package logline

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
)

// New returns a logger writing to w from level up.
func New(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(&handler{
		w: w, level: level, shared: &shared{seen: map[string]bool{}},
		text: slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}),
	})
}

type shared struct {
	mu   sync.Mutex
	seen map[string]bool // messages printed, so a repeated one is not
}

type handler struct {
	w      io.Writer
	level  slog.Leveler
	text   slog.Handler
	attrs  []slog.Attr
	prefix string // the open groups, "a.b."
	*shared
}

func (h *handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return h.text.Handle(ctx, r)
	}
	kind := "warning"
	if r.Level >= slog.LevelError {
		kind = "error"
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.level.Level() > slog.LevelDebug {
		if h.seen[r.Message] {
			return nil
		}
		h.seen[r.Message] = true
	}
	var kv []string
	for _, a := range h.attrs { // keys already under their groups
		kv = append(kv, fmt.Sprintf("%s=%v", a.Key, a.Value.Resolve()))
	}
	r.Attrs(func(a slog.Attr) bool {
		if !a.Equal(slog.Attr{}) {
			kv = append(kv, fmt.Sprintf("%s%s=%v", h.prefix, a.Key, a.Value.Resolve()))
		}
		return true
	})
	line := "nook: " + kind + ": " + r.Message
	if len(kv) > 0 {
		line += " (" + strings.Join(kv, ", ") + ")"
	}
	_, err := io.WriteString(h.w, line+"\n")
	return err
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.text = h.text.WithAttrs(as)
	c.attrs = append(c.attrs[:len(c.attrs):len(c.attrs)], as...)
	for i := len(c.attrs) - len(as); i < len(c.attrs); i++ {
		c.attrs[i].Key = h.prefix + c.attrs[i].Key
	}
	return &c
}

func (h *handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.text = h.text.WithGroup(name)
	c.prefix = h.prefix + name + "."
	return &c
}
