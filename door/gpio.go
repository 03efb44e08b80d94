package door

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/warthog618/go-gpiocdev"
)

// GPIO outputs (the relay and the Wiegand reader lines) drive lines
// through two small interfaces, so that tests can record level changes on
// a fake chip (door/gpiofake) while production goes through the Linux GPIO
// character device.

// Line is one requested output line. Values are logical: 1 is asserted,
// whatever the line's active level.
type Line interface {
	SetValue(v int) error
	Close() error
}

// Chip opens output lines. chip names a GPIO chip ("gpiochip0" or
// "/dev/gpiochip0"), offset a line on it; an activeLow line is asserted by
// driving it low. initial is the logical level the line starts at.
type Chip interface {
	OpenOutput(chip string, offset int, activeLow bool, initial int) (Line, error)
}

// GPIOCDev is the production Chip: the Linux GPIO character device
// (/dev/gpiochipN, uapi v1/v2) through github.com/warthog618/go-gpiocdev.
// The sysfs GPIO interface is deprecated and not used. Lines are requested
// with the consumer name "faced", which `gpioinfo` shows.
type GPIOCDev struct{}

// OpenOutput requests the line as an output.
func (GPIOCDev) OpenOutput(chip string, offset int, activeLow bool, initial int) (Line, error) {
	opts := []gpiocdev.LineReqOption{gpiocdev.AsOutput(initial), gpiocdev.WithConsumer("faced")}
	if activeLow {
		opts = append(opts, gpiocdev.AsActiveLow)
	}
	l, err := gpiocdev.RequestLine(chip, offset, opts...)
	if err != nil {
		return nil, fmt.Errorf("gpio: request %s line %d as output: %w", chip, offset, err)
	}
	return l, nil
}

// ErrGPIOClosed is returned by an output's Fire after Close.
var ErrGPIOClosed = errors.New("door: gpio output closed")

// gpioLatencies keeps the most recent decision-to-line-start latencies of an
// output, for the issue's target "decision to relay/Wiegand start <= 20 ms
// p95". Not safe for concurrent use: its owner locks.
type gpioLatencies struct {
	ring      [256]time.Duration
	n         int // samples held, up to len(ring)
	next      int
	last, max time.Duration
}

func (l *gpioLatencies) add(d time.Duration) {
	l.ring[l.next] = d
	l.next = (l.next + 1) % len(l.ring)
	l.n = min(l.n+1, len(l.ring))
	l.last = d
	l.max = max(l.max, d)
}

// p95 of the samples held (the last 256); 0 when there are none.
func (l *gpioLatencies) p95() time.Duration {
	if l.n == 0 {
		return 0
	}
	s := slices.Clone(l.ring[:l.n])
	slices.Sort(s)
	return s[(len(s)*95+99)/100-1]
}

// gpioCheckRange checks a duration setting, naming it in the error.
func gpioCheckRange(name string, d, lo, hi time.Duration) error {
	if d < lo || d > hi {
		return fmt.Errorf("%s %v: want %v to %v", name, d, lo, hi)
	}
	return nil
}

// gpioOutput is what the relay and the Wiegand output share: their lines,
// their worker's lifecycle and their health. The owner's own state is
// guarded by the same mu.
type gpioOutput struct {
	lines []Line        // nil when they could not be requested
	done  chan struct{} // closed by Close
	quit  chan struct{} // closed when the worker has returned

	mu      sync.Mutex
	openErr error // the lines could not be requested
	setErr  error // the last level change failed (cleared by a success)
	closed  bool
}

// open requests the lines, released (logical 0), and starts the worker.
// If one line cannot be requested, those already requested are freed (a
// misconfigured output holds no line) and no worker runs: the output is
// unhealthy, and Health says why.
func (g *gpioOutput) open(chip Chip, name string, offsets []int, activeLow bool, worker func()) {
	g.done, g.quit = make(chan struct{}), make(chan struct{})
	for _, off := range offsets {
		l, err := chip.OpenOutput(name, off, activeLow, 0)
		if err != nil {
			for _, l := range g.lines {
				_ = l.Close()
			}
			g.lines, g.openErr = nil, err
			close(g.quit)
			return
		}
		g.lines = append(g.lines, l)
	}
	go func() {
		defer close(g.quit)
		worker()
	}()
}

// unusable is why the output cannot be fired at all; g.mu is held.
func (g *gpioOutput) unusable() error {
	switch {
	case g.openErr != nil:
		return g.openErr
	case g.closed:
		return ErrGPIOClosed
	}
	return nil
}

// Health is nil while the lines can be driven: it reports lines that could
// not be requested, or the last failed level change (a relay pulse, a
// Wiegand frame cut short).
func (g *gpioOutput) Health() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.unusable(); err != nil {
		return err
	}
	return g.setErr
}

// Close stops the worker, releases the lines and frees them. Idempotent.
func (g *gpioOutput) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	g.mu.Unlock()
	close(g.done)
	<-g.quit
	var first error
	for _, l := range g.lines {
		if err := l.SetValue(0); err != nil && first == nil {
			first = fmt.Errorf("gpio: release line: %w", err)
		}
		if err := l.Close(); err != nil && first == nil {
			first = fmt.Errorf("gpio: close line: %w", err)
		}
	}
	return first
}

// sleep waits d, or less if the output is closing; it reports whether it
// waited the whole d.
func (g *gpioOutput) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-g.done:
		return false
	}
}
