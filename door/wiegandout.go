package door

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// WiegandConfig is a Wiegand reader output: faced plays the card reader
// in front of an access panel, sending the granted person's card number
// on two lines, D0 and D1.
type WiegandConfig struct {
	DoorID string
	Chip   string
	D0, D1 int // line offsets; must differ
	// Format is 26 or 34 bits; 0 means 26 (H10301, the most common).
	Format Format
	// Facility is the facility (site) code sent with every card: 0-255
	// in 26-bit, 0-65535 in 34-bit.
	Facility uint32
	// PulseWidth is how long a bit's line is pulled low: 0 means 80 µs;
	// 20 µs to 500 µs (readers commonly use 50-100 µs).
	PulseWidth time.Duration
	// Interval is the idle time between two bits' pulses: 0 means 2 ms;
	// 200 µs to 20 ms.
	Interval time.Duration
}

// Wiegand timing defaults and bounds.
const (
	DefaultWiegandPulse    = 80 * time.Microsecond
	MinWiegandPulse        = 20 * time.Microsecond
	MaxWiegandPulse        = 500 * time.Microsecond
	DefaultWiegandInterval = 2 * time.Millisecond
	MinWiegandInterval     = 200 * time.Microsecond
	MaxWiegandInterval     = 20 * time.Millisecond
	// WiegandFrameGap is the idle time kept after every frame: a panel
	// knows a frame has ended when the lines stay idle (typically after
	// 20-25 ms), so two frames sent closer than that would read as one
	// long, invalid frame.
	WiegandFrameGap = 50 * time.Millisecond
	// WiegandPanelTimeout is the idle time after which common panels end
	// a frame: an interval stretched past it (a preempted sender) breaks
	// the frame, and Stats counts it.
	WiegandPanelTimeout = 20 * time.Millisecond
	// wiegandQueue frames may wait behind the one on the wire; more are
	// refused (a burst of grants at one door is one person anyway).
	wiegandQueue = 8
)

// WithDefaults fills the zero settings and checks the rest, naming the
// setting that is wrong: what `faced config check` reports.
func (c WiegandConfig) WithDefaults() (WiegandConfig, error) {
	if c.Format == 0 {
		c.Format = Wiegand26
	}
	if c.PulseWidth == 0 {
		c.PulseWidth = DefaultWiegandPulse
	}
	if c.Interval == 0 {
		c.Interval = DefaultWiegandInterval
	}
	if c.Chip == "" {
		return c, errors.New("wiegand: chip: missing (e.g. gpiochip0)")
	}
	if c.D0 < 0 || c.D1 < 0 {
		return c, fmt.Errorf("wiegand: d0 %d, d1 %d: want line offsets >= 0", c.D0, c.D1)
	}
	if c.D0 == c.D1 {
		return c, fmt.Errorf("wiegand: d1: the same line as d0 (%d)", c.D0)
	}
	fb, err := c.Format.fieldBits()
	if err != nil {
		return c, err
	}
	if c.Facility >= 1<<fb {
		return c, fmt.Errorf("wiegand: facility %d: a %d-bit frame holds 0 to %d", c.Facility, c.Format, 1<<fb-1)
	}
	if err := gpioCheckRange("wiegand: pulse_width", c.PulseWidth, MinWiegandPulse, MaxWiegandPulse); err != nil {
		return c, err
	}
	return c, gpioCheckRange("wiegand: interval", c.Interval, MinWiegandInterval, MaxWiegandInterval)
}

// WiegandOut sends the granted person's card number as a Wiegand frame
// (facility code from the configuration). Wiegand lines idle high and are
// pulsed low, so both lines are requested active low: logical 1 is a pulse.
//
// Only a grant sends a frame. A manual opening (DecisionManual) has no
// card and sends nothing: a panel that must open on it needs a relay
// output on the same door. A person without a card number, or with one
// that is not decimal or does not fit the format's 16 bits, sends nothing
// and Fire says why.
//
// Timing is done from user space: one goroutine sends the frames, one at a
// time (never interleaved) and WiegandFrameGap apart, with its OS thread
// locked for a frame, busy waiting for each pulse and sleeping then
// spinning for each interval. The thread is made SCHED_FIFO for the frame
// when the process may (CAP_SYS_NICE or RLIMIT_RTPRIO; systemd's
// RestrictRealtime=yes forbids it); otherwise it runs at normal priority.
// The achieved pulse widths and intervals are measured around every level
// change and reported by Stats: the kernel may still preempt the thread,
// so the figures are what a frame actually got, not a promise.
//
// Measured on the fake chip on a shared, loaded 2-core x86 VM (load
// average 2.5-5; 80 µs pulses, 2 ms intervals; 10 frames a run, 6-8 runs
// each), absolute errors:
//   - pulse width: median under 0.5 µs, p95 2-26 µs, mean 1-22 µs, max
//     40 µs to 3.2 ms (a preempted spin: on a VM, SCHED_FIFO does not stop
//     the host taking the CPU);
//   - interval: median 2-4 µs, p95 0.13-0.97 ms, max 0.3-4.9 ms with
//     SCHED_FIFO; at normal priority two runs in eight had an interval
//     9 ms and 34 ms late, the second long enough for a panel to split the
//     frame (Stats.Stretched counts such frames).
//
// Real lines add one ioctl per edge, a few µs. On a device whose CPUs
// recognition keeps busy, give faced real-time scheduling where Wiegand
// matters: a panel shrugs off a pulse some µs off, not a gap past its
// frame timeout.
type WiegandOut struct {
	gpioOutput // Health and Close (after the frame on the wire; queued ones are dropped)
	cfg        WiegandConfig
	frames     chan wiegandJob

	// Guarded by mu.
	stats  WiegandStats
	lat    gpioLatencies
	sumErr [2]time.Duration // all frames' summed absolute pulse, interval errors
	nErr   [2]int
}

type wiegandJob struct {
	frame   Frame
	firedAt time.Time
}

// WiegandTiming is the timing one frame achieved, measured from the
// timestamps taken around each SetValue (an edge's time is the midpoint
// of its call). Errors are absolute differences from the configuration.
type WiegandTiming struct {
	Bits int
	PulseMeanErr, PulseMaxErr,
	IntervalMeanErr, IntervalMaxErr time.Duration
	// StartLatency is from Fire's call to the first bit's pulse,
	// including any wait behind earlier frames (a frame and its gap take
	// about 100 ms at the defaults).
	StartLatency time.Duration
	// Duration is from the first pulse's start to the last one's end.
	Duration time.Duration
	// Realtime: the frame was sent from a SCHED_FIFO thread (see
	// gpioRealtime); without it, a busy CPU can stretch pulses and
	// intervals by milliseconds.
	Realtime bool
}

// WiegandStats are a Wiegand output's counters and timing.
type WiegandStats struct {
	Frames   uint64 // frames sent whole
	Failures uint64 // frames cut short by a SetValue error
	Refused  uint64 // frames refused because the queue was full
	// Stretched counts frames sent whole with an interval over
	// WiegandPanelTimeout: a panel may have read them as two bad frames.
	Stretched uint64
	Last      WiegandTiming
	// Over every frame sent.
	PulseMeanErr, PulseMaxErr, IntervalMeanErr, IntervalMaxErr time.Duration
	StartLatencyP95, MaxStartLatency                           time.Duration // over the last 256 frames
}

// NewWiegand requests both lines idle (logical 0, the line high) and
// starts the sender. It fails only on a bad configuration; lines that
// cannot be requested give an output whose Health reports it.
func NewWiegand(chip Chip, cfg WiegandConfig) (*WiegandOut, error) {
	cfg, err := cfg.WithDefaults()
	if err != nil {
		return nil, err
	}
	w := &WiegandOut{cfg: cfg, frames: make(chan wiegandJob, wiegandQueue)}
	w.open(chip, cfg.Chip, []int{cfg.D0, cfg.D1}, true, w.run)
	return w, nil
}

// Kind is "wiegand", the output's type in the configuration.
func (w *WiegandOut) Kind() string { return "wiegand" }

// Fire queues the frame for a grant's card number and returns at once.
func (w *WiegandOut) Fire(_ context.Context, f Firing) error {
	if f.Decision != Granted {
		return nil // denied, or a manual opening: no card to send
	}
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.unusable(); err != nil {
		return err
	}
	frame, err := w.frame(f.CardNumber)
	if err != nil {
		return err
	}
	select {
	case w.frames <- wiegandJob{frame, now}:
		return nil
	default:
		w.stats.Refused++
		return fmt.Errorf("wiegand: %d frames already waiting, frame dropped", wiegandQueue)
	}
}

// frame encodes a card number. Errors do not quote it: card numbers are
// identifiers and Fire's errors are logged.
func (w *WiegandOut) frame(card string) (Frame, error) {
	card = strings.TrimSpace(card)
	if card == "" {
		return nil, errors.New("wiegand: the person has no card number")
	}
	n, err := strconv.ParseUint(card, 10, 64)
	if err != nil {
		return nil, errors.New("wiegand: the person's card number is not a decimal number")
	}
	if n >= 1<<16 {
		return nil, fmt.Errorf("wiegand: the person's card number exceeds the %d-bit format's 65535", w.cfg.Format)
	}
	return Encode(w.cfg.Format, w.cfg.Facility, uint32(n))
}

// run is the sender: the only goroutine that touches the lines after
// NewWiegand, so frames never interleave.
func (w *WiegandOut) run() {
	var lastEnd time.Time
	for {
		select {
		case <-w.done:
			return
		case job := <-w.frames:
			// Keep the lines idle long enough after the previous frame for
			// the panel to close it; an idle output starts at once.
			if d := time.Until(lastEnd.Add(WiegandFrameGap)); d > 0 && !w.sleep(d) {
				return
			}
			timing, err := w.send(job)
			lastEnd = time.Now()
			w.note(timing, err)
		}
	}
}

// send puts one frame on the wire with its OS thread locked, so that the
// busy waits are not moved between threads mid-frame.
func (w *WiegandOut) send(job wiegandJob) (WiegandTiming, error) {
	runtime.LockOSThread()
	restore, rt := gpioRealtime()
	defer func() {
		// A thread that could not be put back stays this goroutine's
		// rather than becoming a real-time thread of the Go runtime.
		if restore() == nil {
			runtime.UnlockOSThread()
		}
	}()
	pw, iv := w.cfg.PulseWidth, w.cfg.Interval
	d0, d1 := w.lines[0], w.lines[1]
	// idle leaves both lines released after a failure, as far as it can:
	// the failure itself is what the frame reports.
	idle := func() {
		_ = d0.SetValue(0)
		_ = d1.SetValue(0)
	}
	var (
		t               WiegandTiming
		pulseSum, ivSum time.Duration
		first, lastFall time.Time
	)
	t.Realtime = rt
	for i, bit := range job.frame {
		line := d0
		if bit {
			line = d1
		}
		if i > 0 {
			gpioWait(lastFall.Add(iv))
		}
		rise, err := gpioSetAt(line, 1)
		if err != nil {
			idle()
			return t, fmt.Errorf("wiegand: bit %d: %w", i, err)
		}
		if i == 0 {
			first = rise
			t.StartLatency = rise.Sub(job.firedAt)
		} else {
			e := gpioAbs(rise.Sub(lastFall) - iv)
			ivSum += e
			t.IntervalMaxErr = max(t.IntervalMaxErr, e)
		}
		gpioSpinUntil(rise.Add(pw))
		fall, err := gpioSetAt(line, 0)
		if err != nil {
			idle()
			return t, fmt.Errorf("wiegand: bit %d release: %w", i, err)
		}
		e := gpioAbs(fall.Sub(rise) - pw)
		pulseSum += e
		t.PulseMaxErr = max(t.PulseMaxErr, e)
		lastFall = fall
		t.Bits++
	}
	t.Duration = lastFall.Sub(first)
	if t.Bits > 0 {
		t.PulseMeanErr = pulseSum / time.Duration(t.Bits)
	}
	if t.Bits > 1 {
		t.IntervalMeanErr = ivSum / time.Duration(t.Bits-1)
	}
	return t, nil
}

// gpioSetAt sets a level and returns when it took effect, as the midpoint of
// the timestamps around the call.
func gpioSetAt(l Line, v int) (time.Time, error) {
	before := time.Now()
	err := l.SetValue(v)
	after := time.Now()
	return before.Add(after.Sub(before) / 2), err
}

// gpioSpinSlack is how early a sleep ends before an interval's deadline, the
// rest being spun: Go's timers on Linux wake up to about a millisecond
// late on a busy machine, and a late bit is worse than a spinning core.
const gpioSpinSlack = time.Millisecond

// gpioWait sleeps then spins until the deadline.
func gpioWait(deadline time.Time) {
	if d := time.Until(deadline) - gpioSpinSlack; d > 0 {
		time.Sleep(d)
	}
	gpioSpinUntil(deadline)
}

// gpioSpinUntil busy-waits: a sleep cannot time tens of microseconds.
func gpioSpinUntil(deadline time.Time) {
	for time.Now().Before(deadline) {
	}
}

func gpioAbs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// note records a frame's outcome.
func (w *WiegandOut) note(t WiegandTiming, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.stats.Failures++
		w.setErr = fmt.Errorf("wiegand %s lines %d/%d: %w", w.cfg.Chip, w.cfg.D0, w.cfg.D1, err)
		return
	}
	w.setErr = nil
	w.stats.Frames++
	w.stats.Last = t
	if w.cfg.Interval+t.IntervalMaxErr > WiegandPanelTimeout {
		w.stats.Stretched++
	}
	w.lat.add(t.StartLatency)
	w.sumErr[0] += t.PulseMeanErr * time.Duration(t.Bits)
	w.nErr[0] += t.Bits
	w.sumErr[1] += t.IntervalMeanErr * time.Duration(t.Bits-1)
	w.nErr[1] += t.Bits - 1
	w.stats.PulseMaxErr = max(w.stats.PulseMaxErr, t.PulseMaxErr)
	w.stats.IntervalMaxErr = max(w.stats.IntervalMaxErr, t.IntervalMaxErr)
}

// Stats returns the output's counters and timing.
func (w *WiegandOut) Stats() WiegandStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.stats
	if w.nErr[0] > 0 {
		s.PulseMeanErr = w.sumErr[0] / time.Duration(w.nErr[0])
	}
	if w.nErr[1] > 0 {
		s.IntervalMeanErr = w.sumErr[1] / time.Duration(w.nErr[1])
	}
	s.StartLatencyP95, s.MaxStartLatency = w.lat.p95(), w.lat.max
	return s
}
