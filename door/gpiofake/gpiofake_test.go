package gpiofake

import (
	"errors"
	"testing"
)

func TestFakeLine(t *testing.T) {
	c := New()
	l, err := c.OpenOutput("gpiochip1", 4, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.OpenOutput("gpiochip1", 4, false, 0); !errors.Is(err, ErrBusy) {
		t.Fatalf("second request of a line: %v, want busy", err)
	}
	for _, v := range []int{1, 1, 0, 1, 0} {
		if err := l.SetValue(v); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.SetValue(2); err == nil {
		t.Fatal("level 2 accepted")
	}
	edges := c.Edges("gpiochip1", 4)
	if len(edges) != 5 || c.Writes("gpiochip1", 4) != 5 {
		t.Fatalf("edges %v, writes %d: want the opening level and 4 changes, 5 writes", edges, c.Writes("gpiochip1", 4))
	}
	if p := Pulses(edges); len(p) != 2 || p[0][1].Before(p[0][0]) {
		t.Fatalf("pulses %v", p)
	}
	c.FailSet("gpiochip1", 4, errors.New("EIO"))
	if err := l.SetValue(1); err == nil || c.Value("gpiochip1", 4) != 0 {
		t.Fatalf("failed set: %v, level %d", err, c.Value("gpiochip1", 4))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.SetValue(0); err == nil {
		t.Fatal("set on a closed line accepted")
	}
	if open, low := c.IsOpen("gpiochip1", 4); open || !low {
		t.Fatalf("after close: open %v, active low %v", open, low)
	}
	if _, err := c.OpenOutput("gpiochip1", 4, false, 0); err != nil {
		t.Fatalf("reopen after close: %v", err)
	}
}
