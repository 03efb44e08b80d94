package door

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// RelayConfig is a GPIO relay output: one line pulsed for every decision
// that opens the door.
type RelayConfig struct {
	DoorID string
	// Chip is the GPIO chip ("gpiochip0"), Line the line offset on it.
	Chip string
	Line int
	// ActiveLow: the relay is energised by driving the line low (many
	// relay boards with opto-couplers are).
	ActiveLow bool
	// Pulse is how long the relay stays energised: 0 means 1 s; 10 ms to 60 s.
	Pulse time.Duration
}

// Relay pulse bounds: below 10 ms a relay may not even close; above a
// minute a door stays unlocked longer than anyone means it to.
const (
	DefaultRelayPulse = time.Second
	MinRelayPulse     = 10 * time.Millisecond
	MaxRelayPulse     = time.Minute
)

// WithDefaults fills the zero settings and checks the rest, naming the
// setting that is wrong: what `faced config check` reports.
func (c RelayConfig) WithDefaults() (RelayConfig, error) {
	if c.Pulse == 0 {
		c.Pulse = DefaultRelayPulse
	}
	if c.Chip == "" {
		return c, errors.New("gpio: chip: missing (e.g. gpiochip0)")
	}
	if c.Line < 0 {
		return c, fmt.Errorf("gpio: line %d: want an offset >= 0", c.Line)
	}
	if err := gpioCheckRange("gpio: pulse", c.Pulse, MinRelayPulse, MaxRelayPulse); err != nil {
		return c, err
	}
	return c, nil
}

// Relay pulses a GPIO line for every decision that opens the door
// (granted, manual_open); denied decisions leave it alone. A second
// opening during a pulse extends the pulse to a full Pulse from that
// opening rather than starting another, so one relay click is one passage.
//
// One goroutine per relay drives the line, so Fire never blocks and
// level changes are never interleaved. If the line cannot be requested,
// the Relay still exists: Health reports why and Fire fails at once, so
// the door shows itself unhealthy while its other outputs work.
type Relay struct {
	gpioOutput // Health and Close (which ends a pulse in progress early: the daemon is stopping)
	cfg        RelayConfig
	kick       chan struct{} // Fire → worker: start a pulse

	// Guarded by mu.
	pulsing bool      // a pulse was asked for and has not been released yet
	firedAt time.Time // the Fire that started the pending pulse
	until   time.Time // when the pulse ends
	stats   RelayStats
	lat     gpioLatencies
}

// RelayStats are a relay's counters and its decision-to-relay latencies,
// measured from Fire's call to the line asserted.
type RelayStats struct {
	Pulses     uint64 // pulses started
	Extensions uint64 // openings that extended a running pulse
	Failures   uint64 // SetValue errors
	LastStartLatency,
	StartLatencyP95, // over the last 256 pulses
	MaxStartLatency time.Duration
}

// NewRelay requests the line (released, i.e. logical 0) and starts the
// relay's worker. It fails only on a bad configuration; a line that
// cannot be requested gives a Relay whose Health reports it.
func NewRelay(chip Chip, cfg RelayConfig) (*Relay, error) {
	cfg, err := cfg.WithDefaults()
	if err != nil {
		return nil, err
	}
	r := &Relay{cfg: cfg, kick: make(chan struct{}, 1)}
	r.open(chip, cfg.Chip, []int{cfg.Line}, cfg.ActiveLow, r.run)
	return r, nil
}

// Kind is "gpio", the output's type in the configuration.
func (r *Relay) Kind() string { return "gpio" }

// Fire starts or extends a pulse when f opens the door, without waiting
// for the line. ctx is not used: nothing here waits.
func (r *Relay) Fire(_ context.Context, f Firing) error {
	if !f.Opens() {
		return nil
	}
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.unusable(); err != nil {
		return err
	}
	if r.pulsing {
		r.until = gpioLater(r.until, now.Add(r.cfg.Pulse))
		r.stats.Extensions++
		return nil
	}
	r.pulsing, r.firedAt, r.until = true, now, now.Add(r.cfg.Pulse)
	select {
	case r.kick <- struct{}{}:
	default: // cannot happen: pulsing guards the one slot
	}
	return nil
}

// run is the relay's worker: the only goroutine that touches the line
// after NewRelay.
func (r *Relay) run() {
	line := r.lines[0]
	for {
		select {
		case <-r.done:
			return
		case <-r.kick:
		}
		err := line.SetValue(1)
		asserted := time.Now()
		r.mu.Lock()
		r.noteSet(err)
		if err != nil {
			r.pulsing = false
			r.mu.Unlock()
			continue
		}
		r.stats.Pulses++
		r.lat.add(asserted.Sub(r.firedAt))
		// The pulse lasts a full Pulse from the line asserted, not from
		// Fire: the worker's start latency does not shorten it.
		r.until = gpioLater(r.until, asserted.Add(r.cfg.Pulse))
		r.mu.Unlock()
		if !r.hold(line) {
			return
		}
	}
}

// hold keeps the line asserted until the pulse, extended or not, ends, then
// releases it. It reports false when the relay is closing (Close releases).
func (r *Relay) hold(line Line) bool {
	for {
		r.mu.Lock()
		left := time.Until(r.until)
		if left <= 0 {
			// Cleared under the lock, so a Fire from now on starts a new
			// pulse, which this worker picks up after the release below.
			r.pulsing = false
		}
		r.mu.Unlock()
		if left <= 0 {
			break
		}
		if !r.sleep(left) {
			return false
		}
	}
	// A relay that stays energised leaves the door unlocked: a failed
	// release is retried until it succeeds (or Close tries once more).
	for {
		err := line.SetValue(0)
		r.mu.Lock()
		r.noteSet(err)
		r.mu.Unlock()
		if err == nil {
			return true
		}
		if !r.sleep(relayReleaseRetry) {
			return false
		}
	}
}

// relayReleaseRetry is how often a failed release is tried again.
const relayReleaseRetry = 100 * time.Millisecond

// noteSet records a SetValue outcome; r.mu is held.
func (r *Relay) noteSet(err error) {
	if err != nil {
		r.stats.Failures++
		r.setErr = fmt.Errorf("gpio %s line %d: %w", r.cfg.Chip, r.cfg.Line, err)
		return
	}
	r.setErr = nil
}

// Stats returns the relay's counters and latencies.
func (r *Relay) Stats() RelayStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stats
	s.LastStartLatency, s.StartLatencyP95, s.MaxStartLatency = r.lat.last, r.lat.p95(), r.lat.max
	return s
}

// LastStartLatency is the time from the last opening Fire to its line
// asserted (0 before the first pulse).
func (r *Relay) LastStartLatency() time.Duration { return r.Stats().LastStartLatency }

func gpioLater(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
