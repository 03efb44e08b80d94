package door_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/facedhq/faced/door"
	"github.com/facedhq/faced/door/gpiofake"
)

const d0, d1 = 23, 24

func newWiegand(t testing.TB, chip door.Chip, cfg door.WiegandConfig) *door.WiegandOut {
	t.Helper()
	cfg.DoorID, cfg.Chip, cfg.D0, cfg.D1 = "front", "gpiochip0", d0, d1
	w, err := door.NewWiegand(chip, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// wire is what a panel sees on D0/D1: the pulses, in order, as bits.
type wire struct {
	frames []door.Frame
	// widths and gaps measured on the fake's own timestamps.
	widths, gaps []time.Duration
}

// readWire decodes the fake's edges as a panel would: a pulse on D0 is a 0,
// on D1 a 1. It fails the test if the two lines are ever pulsed at once, or
// if frames, cut every bits pulses, are not separated by the frame gap. (A
// panel ends a frame after ~20 ms idle; cutting by count instead keeps the
// test from failing when this loaded machine stretches one interval.)
func readWire(t *testing.T, chip *gpiofake.Chip, bits int) wire {
	t.Helper()
	type pulse struct {
		rise, fall time.Time
		bit        bool
	}
	var ps []pulse
	for _, l := range []struct {
		offset int
		bit    bool
	}{{d0, false}, {d1, true}} {
		edges := chip.Edges("gpiochip0", l.offset)
		if len(edges) == 0 || edges[0].Value != 0 {
			t.Fatalf("line %d: edges %v, want opened idle", l.offset, edges)
		}
		for _, p := range gpiofake.Pulses(edges) {
			ps = append(ps, pulse{p[0], p[1], l.bit})
		}
	}
	slices.SortFunc(ps, func(a, b pulse) int { return a.rise.Compare(b.rise) })
	if len(ps)%bits != 0 {
		t.Fatalf("%d pulses on the wire: not whole %d-bit frames", len(ps), bits)
	}
	var w wire
	var cur door.Frame
	for i, p := range ps {
		if i > 0 {
			gap := p.rise.Sub(ps[i-1].fall)
			if gap < 0 {
				t.Fatalf("pulse %d starts before pulse %d ends: D0 and D1 overlap", i, i-1)
			}
			if i%bits == 0 {
				if gap < door.WiegandFrameGap {
					t.Fatalf("frames %d and %d only %v apart: a panel would read one long frame", i/bits-1, i/bits, gap)
				}
			} else {
				w.gaps = append(w.gaps, gap)
			}
		}
		cur = append(cur, p.bit)
		w.widths = append(w.widths, p.fall.Sub(p.rise))
		if len(cur) == bits {
			w.frames = append(w.frames, cur)
			cur = nil
		}
	}
	return w
}

func meanMax(ds []time.Duration, want time.Duration) (mean, worst time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	var sum time.Duration
	for _, d := range ds {
		e := d - want
		if e < 0 {
			e = -e
		}
		sum += e
		worst = max(worst, e)
	}
	return sum / time.Duration(len(ds)), worst
}

func TestWiegandFramesDecode(t *testing.T) {
	for _, c := range []struct {
		format   door.Format
		facility uint32
		card     string
		want     uint32
	}{
		{door.Wiegand26, 18, "4242", 4242},
		{door.Wiegand26, 255, "65535", 65535},
		{door.Wiegand34, 1234, " 00056789 ", 56789},
		{door.Wiegand34, 65535, "0", 0},
	} {
		chip := gpiofake.New()
		w := newWiegand(t, chip, door.WiegandConfig{Format: c.format, Facility: c.facility})
		if open, low := chip.IsOpen("gpiochip0", d0); !open || !low {
			t.Fatalf("D0 open %v, active low %v: want an open active-low line (idle high)", open, low)
		}
		f := grant("front")
		f.CardNumber = c.card
		if err := w.Fire(context.Background(), f); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the frame", func() bool { return w.Stats().Frames == 1 })
		got := readWire(t, chip, int(c.format))
		if len(got.frames) != 1 {
			t.Fatalf("%d frames on the wire, want 1", len(got.frames))
		}
		format, facility, card, err := door.Decode(got.frames[0])
		if err != nil || format != c.format || facility != c.facility || card != c.want {
			t.Fatalf("panel read %d-bit %d/%d (%v), want %d-bit %d/%d", format, facility, card, err, c.format, c.facility, c.want)
		}
		if chip.Value("gpiochip0", d0) != 0 || chip.Value("gpiochip0", d1) != 0 {
			t.Fatal("lines not left idle")
		}
		if s := w.Stats(); s.Last.Bits != int(c.format) || s.Last.StartLatency <= 0 || s.Last.Duration <= 0 {
			t.Fatalf("stats %+v", s)
		}
	}
}

// Bad cards and decisions without a card send nothing; only the error says
// why, without quoting the card number (it is logged).
func TestWiegandRefuses(t *testing.T) {
	chip := gpiofake.New()
	w := newWiegand(t, chip, door.WiegandConfig{Format: door.Wiegand26, Facility: 1})
	ctx := context.Background()
	for card, want := range map[string]string{
		"":                        "no card number",
		"12ab":                    "not a decimal",
		"-5":                      "not a decimal",
		"65536":                   "exceeds",
		"99999999999999999999999": "not a decimal",
	} {
		f := grant("front")
		f.CardNumber = card
		err := w.Fire(ctx, f)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("card %q: %v, want %q", card, err, want)
		}
		if card != "" && strings.Contains(err.Error(), card) {
			t.Fatalf("error quotes the card number: %v", err)
		}
	}
	for _, d := range []string{door.DecisionManual, door.DeniedUnknown, door.DeniedSchedule} {
		f := grant("front")
		f.Decision = d
		if err := w.Fire(ctx, f); err != nil {
			t.Fatalf("%s: %v", d, err)
		}
	}
	time.Sleep(20 * time.Millisecond) // a frame that did start would show by now
	if n := chip.Writes("gpiochip0", d0) + chip.Writes("gpiochip0", d1); n != 0 {
		t.Fatalf("%d writes on the lines, want none", n)
	}
	if w.Health() != nil {
		t.Fatalf("a refused card made the output unhealthy: %v", w.Health())
	}
}

// Two quick grants: two whole frames, one after the other, never mixed.
func TestWiegandFramesDoNotInterleave(t *testing.T) {
	chip := gpiofake.New()
	w := newWiegand(t, chip, door.WiegandConfig{Format: door.Wiegand34, Facility: 7, Interval: 500 * time.Microsecond})
	cards := []string{"1", "65534", "4242"}
	for _, c := range cards {
		f := grant("front")
		f.CardNumber = c
		if err := w.Fire(context.Background(), f); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "three frames", func() bool { return w.Stats().Frames == 3 })
	got := readWire(t, chip, 34)
	if len(got.frames) != 3 {
		t.Fatalf("%d frames on the wire, want 3", len(got.frames))
	}
	for i, fr := range got.frames {
		_, facility, card, err := door.Decode(fr)
		if err != nil || facility != 7 || door.Format(len(fr)) != door.Wiegand34 {
			t.Fatalf("frame %d: %d bits, facility %d, %v", i, len(fr), facility, err)
		}
		if want := []uint32{1, 65534, 4242}[i]; card != want {
			t.Fatalf("frame %d: card %d, want %d (frames out of order)", i, card, want)
		}
	}
}

// The issue asks for the Wiegand bit timing error to be measured and
// reported: this logs it, as the output measured it and as the fake's own
// timestamps show it. Only gross errors fail (a pulse 1 ms off is not
// timing, it is a bug); the figures depend on the machine's load.
func TestWiegandTiming(t *testing.T) {
	chip := gpiofake.New()
	cfg := door.WiegandConfig{Format: door.Wiegand26, Facility: 18} // default 80 µs / 2 ms
	w := newWiegand(t, chip, cfg)
	const frames = 10
	for i := range frames {
		f := grant("front")
		f.CardNumber = strconv.Itoa(i * 6553)
		if err := w.Fire(context.Background(), f); err != nil {
			t.Fatal(err)
		}
		// One at a time, so the start latency is that of an idle output
		// (a frame queued behind another waits for it and the gap).
		eventually(t, "the frame", func() bool { return w.Stats().Frames == uint64(i+1) })
		time.Sleep(door.WiegandFrameGap)
	}
	s := w.Stats()
	got := readWire(t, chip, 26)
	if len(got.frames) != frames {
		t.Fatalf("%d frames, want %d", len(got.frames), frames)
	}
	pm, px := meanMax(got.widths, door.DefaultWiegandPulse)
	im, ix := meanMax(got.gaps, door.DefaultWiegandInterval)
	t.Logf("wiegand 26-bit, %d frames, pulse %v, interval %v, SCHED_FIFO %v:", frames, door.DefaultWiegandPulse, door.DefaultWiegandInterval, s.Last.Realtime)
	t.Logf("  measured by the output: pulse error mean %v max %v; interval error mean %v max %v; start latency p95 %v max %v",
		s.PulseMeanErr, s.PulseMaxErr, s.IntervalMeanErr, s.IntervalMaxErr, s.StartLatencyP95, s.MaxStartLatency)
	t.Logf("  on the fake's timestamps: pulse error mean %v p50 %v p95 %v max %v; interval error mean %v p50 %v p95 %v max %v",
		pm, quantileErr(got.widths, door.DefaultWiegandPulse, 50), quantileErr(got.widths, door.DefaultWiegandPulse, 95), px,
		im, quantileErr(got.gaps, door.DefaultWiegandInterval, 50), quantileErr(got.gaps, door.DefaultWiegandInterval, 95), ix)
	if s.PulseMeanErr > time.Millisecond || s.IntervalMeanErr > 2*time.Millisecond {
		t.Fatalf("timing grossly off: %+v", s)
	}
	if s.PulseMaxErr == 0 && s.IntervalMaxErr == 0 {
		t.Fatal("no timing error measured at all: the stats are not filled")
	}
}

// quantileErr is the q-th percentile of the absolute errors.
func quantileErr(ds []time.Duration, want time.Duration, q int) time.Duration {
	errs := make([]time.Duration, len(ds))
	for i, d := range ds {
		errs[i] = max(d-want, want-d)
	}
	slices.Sort(errs)
	return errs[(len(errs)*q+99)/100-1]
}

func TestWiegandUnhealthy(t *testing.T) {
	chip := gpiofake.New()
	chip.FailOpen("gpiochip0", d1, errors.New("no such line"))
	w := newWiegand(t, chip, door.WiegandConfig{})
	if err := w.Health(); err == nil || !strings.Contains(err.Error(), "no such line") {
		t.Fatalf("health %v", err)
	}
	if open, _ := chip.IsOpen("gpiochip0", d0); open {
		t.Fatal("D0 kept requested although D1 failed")
	}
	if err := w.Fire(context.Background(), grant("front")); err == nil {
		t.Fatal("Fire without lines succeeded")
	}

	chip2 := gpiofake.New()
	w2 := newWiegand(t, chip2, door.WiegandConfig{})
	chip2.FailSet("gpiochip0", d1, errors.New("EIO"))
	f := grant("front")
	f.CardNumber = "65535" // has 1 bits: D1 is used
	if err := w2.Fire(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the failure noted", func() bool { return w2.Health() != nil })
	if s := w2.Stats(); s.Failures != 1 || s.Frames != 0 {
		t.Fatalf("stats %+v", s)
	}
	if chip2.Value("gpiochip0", d0) != 0 {
		t.Fatal("a failed frame left D0 asserted")
	}
}

func TestWiegandConfig(t *testing.T) {
	chip := gpiofake.New()
	for _, c := range []struct {
		cfg  door.WiegandConfig
		want string
	}{
		{door.WiegandConfig{Chip: "gpiochip0", D0: 4, D1: 4}, "d1: the same line as d0"},
		{door.WiegandConfig{Chip: "gpiochip0", D0: 4, D1: 5, Format: 37}, "want 26 or 34"},
		{door.WiegandConfig{Chip: "gpiochip0", D0: 4, D1: 5, Facility: 256}, "facility 256"},
		{door.WiegandConfig{Chip: "gpiochip0", D0: 4, D1: 5, PulseWidth: 10 * time.Microsecond}, "pulse_width 10µs"},
		{door.WiegandConfig{Chip: "gpiochip0", D0: 4, D1: 5, Interval: 30 * time.Millisecond}, "interval 30ms"},
		{door.WiegandConfig{D0: 4, D1: 5}, "chip"},
	} {
		if _, err := door.NewWiegand(chip, c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%+v: %v, want an error naming %q", c.cfg, err, c.want)
		}
	}
	cfg, err := door.WiegandConfig{Chip: "gpiochip0", D0: 4, D1: 5, Facility: 65535, Format: door.Wiegand34}.WithDefaults()
	if err != nil || cfg.PulseWidth != 80*time.Microsecond || cfg.Interval != 2*time.Millisecond {
		t.Fatalf("defaults %+v, %v", cfg, err)
	}
	if cfg, _ := (door.WiegandConfig{Chip: "gpiochip0", D0: 4, D1: 5}).WithDefaults(); cfg.Format != door.Wiegand26 {
		t.Fatalf("default format %d, want 26", cfg.Format)
	}
}

// stallChip stalls the first assertion of a line, as a preempted sender
// would be.
type stallChip struct {
	*gpiofake.Chip
	stall  time.Duration
	offset int
}

type stallLine struct {
	door.Line
	stall time.Duration
	once  bool
}

func (c stallChip) OpenOutput(chip string, offset int, activeLow bool, initial int) (door.Line, error) {
	l, err := c.Chip.OpenOutput(chip, offset, activeLow, initial)
	if err != nil || offset != c.offset {
		return l, err
	}
	return &stallLine{Line: l, stall: c.stall}, nil
}

func (l *stallLine) SetValue(v int) error {
	if v == 1 && !l.once {
		l.once = true // only the sender calls SetValue
		time.Sleep(l.stall)
	}
	return l.Line.SetValue(v)
}

// A frame whose interval is stretched past a panel's timeout is sent whole
// but counted, and its timing shows the stretch.
func TestWiegandStretched(t *testing.T) {
	fake := gpiofake.New()
	w := newWiegand(t, stallChip{fake, 60 * time.Millisecond, d1}, door.WiegandConfig{Format: door.Wiegand26, Facility: 0})
	f := grant("front")
	f.CardNumber = "1" // facility 0: D1 is first asserted for the card's last bit, mid-frame
	if err := w.Fire(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the frame", func() bool { return w.Stats().Frames == 1 })
	s := w.Stats()
	if s.Stretched != 1 || s.IntervalMaxErr < 20*time.Millisecond {
		t.Fatalf("stats %+v: want the frame counted as stretched", s)
	}
}
