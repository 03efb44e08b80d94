package door_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/facedhq/faced/door"
	"github.com/facedhq/faced/door/gpiofake"
)

// Tests drive the outputs on gpiofake: this kernel has no GPIO chip.

// pulseSlack is how much longer than asked a pulse may last on this shared,
// loaded machine (timer wake-up, scheduling); a pulse is never shorter.
const pulseSlack = 50 * time.Millisecond

// eventually polls cond until it holds or 10 s pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func grant(doorID string) door.Firing {
	return door.Firing{EventID: 1, DoorID: doorID, Decision: door.Granted, PersonID: "p1", CardNumber: "4242", Time: time.Now()}
}

func newRelay(t testing.TB, chip door.Chip, pulse time.Duration) *door.Relay {
	t.Helper()
	r, err := door.NewRelay(chip, door.RelayConfig{DoorID: "front", Chip: "gpiochip0", Line: 17, Pulse: pulse})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestRelayPulsesOnOpeningsOnly(t *testing.T) {
	chip := gpiofake.New()
	const pulse = 100 * time.Millisecond
	r := newRelay(t, chip, pulse)
	if r.Kind() != "gpio" || r.Health() != nil {
		t.Fatalf("kind %q, health %v", r.Kind(), r.Health())
	}
	if open, low := chip.IsOpen("gpiochip0", 17); !open || low {
		t.Fatalf("line open %v, active low %v; want open, active high", open, low)
	}
	ctx := context.Background()
	for _, d := range []string{door.DeniedUnknown, door.DeniedSpoof, door.DeniedSchedule, door.DeniedExpired, door.DeniedDisabled, door.DeniedGallery} {
		f := grant("front")
		f.Decision = d
		if err := r.Fire(ctx, f); err != nil {
			t.Fatalf("%s: %v", d, err)
		}
	}
	time.Sleep(20 * time.Millisecond) // a denied decision that did start a pulse would show by now
	if w := chip.Writes("gpiochip0", 17); w != 0 {
		t.Fatalf("denied decisions wrote the line %d times", w)
	}
	for i, f := range []door.Firing{grant("front"), {DoorID: "front", Decision: door.DecisionManual, KeyID: "k1"}} {
		before := time.Now()
		if err := r.Fire(ctx, f); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(before); d > 5*time.Millisecond {
			t.Logf("Fire took %v", d) // informational: Fire only takes a lock
		}
		eventually(t, "the pulse to end", func() bool { return len(gpiofake.Pulses(chip.Edges("gpiochip0", 17))) == i+1 })
	}
	edges := chip.Edges("gpiochip0", 17)
	if len(edges) != 5 || edges[0].Value != 0 {
		t.Fatalf("edges %v: want opened released, then two pulses", edges)
	}
	for _, p := range gpiofake.Pulses(edges) {
		if got := p[1].Sub(p[0]); got < pulse-time.Millisecond || got > pulse+pulseSlack {
			t.Fatalf("pulse lasted %v, want %v (+%v)", got, pulse, pulseSlack)
		}
	}
	s := r.Stats()
	if s.Pulses != 2 || s.Extensions != 0 || s.Failures != 0 || s.LastStartLatency <= 0 || s.LastStartLatency != r.LastStartLatency() {
		t.Fatalf("stats %+v", s)
	}
	t.Logf("relay: pulses %v and %v for %v; start latency last %v, max %v",
		gpiofake.Pulses(edges)[0][1].Sub(gpiofake.Pulses(edges)[0][0]), gpiofake.Pulses(edges)[1][1].Sub(gpiofake.Pulses(edges)[1][0]), pulse, s.LastStartLatency, s.MaxStartLatency)

	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if open, _ := chip.IsOpen("gpiochip0", 17); open {
		t.Fatal("Close left the line requested")
	}
	if err := r.Fire(ctx, grant("front")); !errors.Is(err, door.ErrGPIOClosed) {
		t.Fatalf("Fire after Close: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// A second grant during a pulse extends it to a full pulse from that grant:
// one rise, one fall.
func TestRelayExtends(t *testing.T) {
	chip := gpiofake.New()
	const pulse = 200 * time.Millisecond
	r := newRelay(t, chip, pulse)
	ctx := context.Background()
	if err := r.Fire(ctx, grant("front")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the line asserted", func() bool { return chip.Value("gpiochip0", 17) == 1 })
	time.Sleep(pulse / 2)
	second := time.Now()
	if err := r.Fire(ctx, grant("front")); err != nil {
		t.Fatal(err)
	}
	if err := r.Fire(ctx, grant("front")); err != nil { // and a third right after
		t.Fatal(err)
	}
	eventually(t, "the pulse to end", func() bool { return chip.Value("gpiochip0", 17) == 0 })
	edges := chip.Edges("gpiochip0", 17)
	pulses := gpiofake.Pulses(edges)
	if len(edges) != 3 || len(pulses) != 1 {
		t.Fatalf("edges %v: want one pulse", edges)
	}
	end := pulses[0][1]
	if want := second.Add(pulse); end.Before(want) || end.After(want.Add(pulseSlack)) {
		t.Fatalf("extended pulse ended %v after the second grant, want %v (+%v)", end.Sub(second), pulse, pulseSlack)
	}
	if s := r.Stats(); s.Pulses != 1 || s.Extensions != 2 {
		t.Fatalf("stats %+v: want 1 pulse, 2 extensions", s)
	}
	// After the pulse, a grant starts a new one.
	if err := r.Fire(ctx, grant("front")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a second pulse", func() bool { return len(gpiofake.Pulses(chip.Edges("gpiochip0", 17))) == 2 })
}

func TestRelayUnhealthy(t *testing.T) {
	chip := gpiofake.New()
	chip.FailOpen("gpiochip0", 17, errors.New("no such line"))
	r := newRelay(t, chip, 0)
	if err := r.Health(); err == nil || !strings.Contains(err.Error(), "no such line") {
		t.Fatalf("health %v: want the open error", err)
	}
	if err := r.Fire(context.Background(), grant("front")); err == nil || err.Error() != r.Health().Error() {
		t.Fatalf("Fire on an unopened line: %v", err)
	}
	if err := r.Fire(context.Background(), door.Firing{Decision: door.DeniedUnknown}); err != nil {
		t.Fatalf("a denied decision has nothing to drive: %v", err)
	}

	// A line that opens but then fails: unhealthy after the failed pulse,
	// healthy again once a pulse goes through.
	chip2 := gpiofake.New()
	r2 := newRelay(t, chip2, 10*time.Millisecond)
	chip2.FailSet("gpiochip0", 17, errors.New("EIO"))
	if err := r2.Fire(context.Background(), grant("front")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the failure noted", func() bool { return r2.Health() != nil })
	if s := r2.Stats(); s.Failures != 1 || s.Pulses != 0 {
		t.Fatalf("stats %+v", s)
	}
	chip2.FailSet("gpiochip0", 17, nil)
	if err := r2.Fire(context.Background(), grant("front")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the recovery", func() bool { return r2.Health() == nil && len(gpiofake.Pulses(chip2.Edges("gpiochip0", 17))) == 1 })

	// A release that fails is retried: the door must not stay unlocked.
	chip3 := gpiofake.New()
	r4 := newRelay(t, chip3, 500*time.Millisecond) // long enough to fail its release below
	if err := r4.Fire(context.Background(), grant("front")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the line asserted", func() bool { return chip3.Value("gpiochip0", 17) == 1 })
	chip3.FailSet("gpiochip0", 17, errors.New("EIO"))
	eventually(t, "the release failure noted", func() bool { return r4.Health() != nil })
	chip3.FailSet("gpiochip0", 17, nil)
	eventually(t, "the release retried", func() bool { return chip3.Value("gpiochip0", 17) == 0 && r4.Health() == nil })
}

func TestRelayConfig(t *testing.T) {
	chip := gpiofake.New()
	for _, c := range []struct {
		cfg  door.RelayConfig
		want string
	}{
		{door.RelayConfig{Line: 1}, "chip"},
		{door.RelayConfig{Chip: "gpiochip0", Line: -1}, "line -1"},
		{door.RelayConfig{Chip: "gpiochip0", Pulse: 5 * time.Millisecond}, "pulse 5ms"},
		{door.RelayConfig{Chip: "gpiochip0", Pulse: 2 * time.Minute}, "pulse 2m0s"},
	} {
		if _, err := door.NewRelay(chip, c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%+v: %v, want an error naming %q", c.cfg, err, c.want)
		}
	}
	cfg, err := door.RelayConfig{Chip: "gpiochip0"}.WithDefaults()
	if err != nil || cfg.Pulse != time.Second {
		t.Fatalf("defaults %+v, %v: want a 1 s pulse", cfg, err)
	}
	// Two outputs on one line: the second cannot have it, as with the kernel.
	newRelay(t, chip, 0)
	r := newRelay(t, chip, 0)
	if err := r.Health(); !errors.Is(err, gpiofake.ErrBusy) {
		t.Fatalf("second relay on a line: %v, want busy", err)
	}
}

// The real character device: this machine has no GPIO chip, so opening one
// must fail with an error naming it, not panic; a relay on it is unhealthy.
func TestGPIOCDevNoChip(t *testing.T) {
	const chip = "gpiochip-faced-test-none"
	_, err := door.GPIOCDev{}.OpenOutput(chip, 3, true, 0)
	if err == nil || !strings.Contains(err.Error(), chip) || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("open a missing chip: %v", err)
	}
	r := newRelay(t, door.GPIOCDev{}, 0)
	if r.Health() == nil {
		t.Fatal("a relay on gpiochip0 is healthy on a machine without GPIO")
	}
	t.Logf("relay on a machine without GPIO: %v", r.Health())
}

// BenchmarkRelayStart measures the "decision to relay start": from
// Fire to the line asserted on the fake chip (what the production path adds
// is one ioctl). Each iteration waits for its 10 ms pulse to end, so that
// the next Fire starts a pulse rather than extending one. Read the p50/p95
// metrics: ns/op also holds the test's 1 ms polling.
func BenchmarkRelayStart(b *testing.B) {
	chip := gpiofake.New()
	r, err := door.NewRelay(chip, door.RelayConfig{Chip: "gpiochip0", Line: 5, Pulse: door.MinRelayPulse})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	ctx := context.Background()
	var lat []time.Duration
	for i := 0; b.Loop(); i++ {
		if err := r.Fire(ctx, grant("front")); err != nil {
			b.Fatal(err)
		}
		eventually(b, "the pulse", func() bool { return r.Stats().Pulses == uint64(i+1) })
		lat = append(lat, r.LastStartLatency())
		b.StopTimer()
		eventually(b, "the release", func() bool { return chip.Value("gpiochip0", 5) == 0 })
		b.StartTimer()
	}
	slices.Sort(lat)
	p := func(q int) float64 { return float64(lat[(len(lat)*q+99)/100-1].Microseconds()) }
	b.ReportMetric(p(50), "p50-µs")
	b.ReportMetric(p(95), "p95-µs")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
}
