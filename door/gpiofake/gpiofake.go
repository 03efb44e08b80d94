// Package gpiofake is a FAKE GPIO chip for tests; real hardware is not
// reachable here (the test machine's kernel has no GPIO chip and no GPIO
// simulator). It stands in for door.GPIOCDev behind door.Chip and records
// every level change of every line with a time.Now() timestamp, so tests
// can check relay pulses and decode Wiegand frames from the edges.
//
// Like the kernel, it refuses to hand out a line that is already requested
// and refuses level changes on a closed line. It can be told to fail
// opening a line or setting its level, to test unhealthy outputs.
package gpiofake

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/facedhq/faced/door"
)

// Edge is one level change of a line: its new logical level (1 asserted)
// and when it was set.
type Edge struct {
	Value int
	Time  time.Time
}

type key struct {
	chip   string
	offset int
}

type line struct {
	open      bool
	activeLow bool
	value     int
	edges     []Edge
	writes    int
}

// Chip is the fake: any number of chips and lines, created on first use.
// Safe for concurrent use. The zero value is not usable: call New.
type Chip struct {
	mu       sync.Mutex
	lines    map[key]*line
	failOpen map[key]error
	failSet  map[key]error
}

// New returns a fake chip with no lines requested.
func New() *Chip {
	return &Chip{lines: map[key]*line{}, failOpen: map[key]error{}, failSet: map[key]error{}}
}

// ErrBusy is what opening an already requested line returns (the kernel's
// EBUSY).
var ErrBusy = errors.New("gpiofake: line busy")

// FailOpen makes every later OpenOutput of the line fail with err (nil
// lifts it).
func (c *Chip) FailOpen(chip string, offset int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failOpen[key{chip, offset}] = err
}

// FailSet makes every later SetValue on the line fail with err (nil
// lifts it). A failed SetValue leaves the level unchanged.
func (c *Chip) FailSet(chip string, offset int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failSet[key{chip, offset}] = err
}

// OpenOutput requests the line at the initial logical level, recording
// that level as the line's first edge.
func (c *Chip) OpenOutput(chip string, offset int, activeLow bool, initial int) (door.Line, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := key{chip, offset}
	if err := c.failOpen[k]; err != nil {
		return nil, fmt.Errorf("gpiofake: open %s line %d: %w", chip, offset, err)
	}
	l := c.lines[k]
	if l == nil {
		l = &line{}
		c.lines[k] = l
	}
	if l.open {
		return nil, fmt.Errorf("gpiofake: open %s line %d: %w", chip, offset, ErrBusy)
	}
	l.open, l.activeLow, l.value = true, activeLow, initial
	l.edges = append(l.edges, Edge{initial, time.Now()})
	return &handle{c: c, k: k, l: l}, nil
}

// handle is one request of a line, invalid once closed.
type handle struct {
	c      *Chip
	k      key
	l      *line
	closed bool // under c.mu
}

func (h *handle) SetValue(v int) error {
	if v != 0 && v != 1 {
		return fmt.Errorf("gpiofake: value %d: want 0 or 1", v)
	}
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	if h.closed {
		return fmt.Errorf("gpiofake: %s line %d: set on a closed line", h.k.chip, h.k.offset)
	}
	if err := h.c.failSet[h.k]; err != nil {
		return fmt.Errorf("gpiofake: %s line %d: %w", h.k.chip, h.k.offset, err)
	}
	h.l.writes++
	if v != h.l.value {
		h.l.value = v
		h.l.edges = append(h.l.edges, Edge{v, time.Now()})
	}
	return nil
}

func (h *handle) Close() error {
	h.c.mu.Lock()
	defer h.c.mu.Unlock()
	if h.closed {
		return fmt.Errorf("gpiofake: %s line %d: already closed", h.k.chip, h.k.offset)
	}
	h.closed, h.l.open = true, false
	return nil
}

// snapshot is a copy of the line's state (zero for a line never opened).
func (c *Chip) snapshot(chip string, offset int) line {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l := c.lines[key{chip, offset}]; l != nil {
		cp := *l
		cp.edges = slices.Clone(l.edges)
		return cp
	}
	return line{}
}

// Edges returns a copy of the line's level changes so far, the level it
// was opened at first (nil for a line never opened).
func (c *Chip) Edges(chip string, offset int) []Edge { return c.snapshot(chip, offset).edges }

// Value is the line's logical level (0 for a line never opened).
func (c *Chip) Value(chip string, offset int) int { return c.snapshot(chip, offset).value }

// Writes counts successful SetValue calls on the line, changing its level
// or not.
func (c *Chip) Writes(chip string, offset int) int { return c.snapshot(chip, offset).writes }

// IsOpen reports whether the line is requested; activeLow how it was.
func (c *Chip) IsOpen(chip string, offset int) (open, activeLow bool) {
	l := c.snapshot(chip, offset)
	return l.open, l.activeLow
}

// Pulses pairs the line's rises (0→1) with the falls that follow: one
// [rise, fall] per completed pulse, in order. A pulse still asserted is
// left out.
func Pulses(edges []Edge) [][2]time.Time {
	var out [][2]time.Time
	var rise time.Time
	up := false
	for _, e := range edges {
		switch {
		case e.Value == 1 && !up:
			rise, up = e.Time, true
		case e.Value == 0 && up:
			out = append(out, [2]time.Time{rise, e.Time})
			up = false
		}
	}
	return out
}
