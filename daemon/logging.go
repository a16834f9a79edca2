package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/petrel-vpn/petrel/config"
)

// NewLogger builds the daemon's logger from daemon.log: text or JSON, a
// level, and per-subsystem levels keyed by the "subsystem" attribute that
// components add with Logger.With("subsystem", NAME).
func NewLogger(w io.Writer, c config.Log) (*slog.Logger, error) {
	base, err := parseLevel(c.Level)
	if err != nil {
		return nil, err
	}
	levels := map[string]slog.Level{}
	for k, v := range c.Levels {
		l, err := parseLevel(v)
		if err != nil {
			return nil, fmt.Errorf("daemon: log level of %s: %w", k, err)
		}
		levels[k] = l
	}
	min := base
	for _, l := range levels {
		min = minLevel(min, l)
	}
	opts := &slog.HandlerOptions{Level: min}
	var h slog.Handler
	if c.Format == "json" {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(&levelHandler{inner: h, level: base, levels: levels}), nil
}

func minLevel(a, b slog.Level) slog.Level {
	if a < b {
		return a
	}
	return b
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if s == "" {
		return slog.LevelInfo, nil
	}
	if err := l.UnmarshalText([]byte(strings.ToUpper(s))); err != nil {
		return 0, fmt.Errorf("daemon: log level %q: expected debug, info, warn or error", s)
	}
	return l, nil
}

// levelHandler filters records by the level of their subsystem.
type levelHandler struct {
	inner  slog.Handler
	level  slog.Level
	levels map[string]slog.Level
}

func (h *levelHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *levelHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.inner.Handle(ctx, r)
}

func (h *levelHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	for _, a := range attrs {
		if a.Key == "subsystem" {
			if l, ok := h.levels[a.Value.String()]; ok {
				c.level = l
			}
		}
	}
	c.inner = h.inner.WithAttrs(attrs)
	return &c
}

func (h *levelHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.inner = h.inner.WithGroup(name)
	return &c
}
