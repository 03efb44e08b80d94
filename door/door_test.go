package door

import (
	"errors"
	"testing"
	"time"
)

func TestWiegandRoundTrip(t *testing.T) {
	for _, c := range []struct {
		f              Format
		facility, card uint32
	}{
		{Wiegand26, 0, 0}, {Wiegand26, 255, 65535}, {Wiegand26, 18, 4242},
		{Wiegand34, 0, 1}, {Wiegand34, 65535, 65535}, {Wiegand34, 1234, 56789},
	} {
		frame, err := Encode(c.f, c.facility, c.card)
		if err != nil {
			t.Fatal(err)
		}
		if len(frame) != int(c.f) {
			t.Fatalf("%d-bit frame has %d bits", c.f, len(frame))
		}
		f, fac, card, err := Decode(frame)
		if err != nil || f != c.f || fac != c.facility || card != c.card {
			t.Fatalf("Decode(Encode(%d, %d, %d)) = %d, %d, %d, %v", c.f, c.facility, c.card, f, fac, card, err)
		}
		// Any one flipped bit is caught by a parity bit.
		for i := range frame {
			bad := append(Frame(nil), frame...)
			bad[i] = !bad[i]
			if _, _, _, err := Decode(bad); !errors.Is(err, ErrParity) {
				t.Fatalf("%d-bit frame with bit %d flipped: %v, want ErrParity", c.f, i, err)
			}
		}
	}
	// A known H10301 frame: facility 1, card 1.
	frame, _ := Encode(Wiegand26, 1, 1)
	want := "10000000100000000000000010" // even parity 1 (one 1 in the first 12 data bits), odd parity 0
	got := ""
	for _, b := range frame {
		if b {
			got += "1"
		} else {
			got += "0"
		}
	}
	if got != want {
		t.Fatalf("26-bit frame for 1/1 = %s, want %s", got, want)
	}
	if _, err := Encode(Wiegand26, 256, 1); err == nil {
		t.Fatal("facility 256 accepted in 26-bit")
	}
	if _, err := Encode(Wiegand34, 1, 65536); err == nil {
		t.Fatal("card 65536 accepted")
	}
	if _, err := Encode(Format(37), 1, 1); err == nil {
		t.Fatal("37-bit format accepted")
	}
}

func TestSchedule(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err) // time/tzdata is linked in: this works on any system
	}
	weekdays, err := ParseDays([]string{"mon-fri"})
	if err != nil {
		t.Fatal(err)
	}
	from, _ := ParseClock("08:00")
	to, _ := ParseClock("18:30")
	xmas, _ := ParseDate("2026-12-25")
	s := &Schedule{Windows: []Window{{Days: weekdays, From: from, To: to}}, Holidays: []Date{xmas}, Location: berlin}
	at := func(v string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", v, berlin)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	for v, want := range map[string]bool{
		"2026-12-03 08:00": true,  // Thursday, first minute
		"2026-12-03 18:29": true,  // last minute
		"2026-12-03 18:30": false, // end is exclusive
		"2026-12-03 07:59": false,
		"2026-12-05 12:00": false, // Saturday
		"2026-12-25 12:00": false, // holiday on a Friday
	} {
		if got := s.Open(at(v)); got != want {
			t.Errorf("Open(%s) = %v, want %v", v, got, want)
		}
	}
	// The zone is the device's: 07:30 UTC is 08:30 in Berlin.
	if !s.Open(time.Date(2026, 12, 3, 7, 30, 0, 0, time.UTC)) {
		t.Error("the schedule is not read in its time zone")
	}
	var none *Schedule
	if !none.Open(time.Now()) {
		t.Error("no schedule must admit at all times")
	}
	for _, bad := range []string{"8:00", "24:01", "12:60", "noon"} {
		if _, err := ParseClock(bad); err == nil {
			t.Errorf("ParseClock(%q) accepted", bad)
		}
	}
	if d, err := ParseDays([]string{"fri-mon"}); err != nil || !d[time.Saturday] || !d[time.Monday] || d[time.Wednesday] {
		t.Errorf("fri-mon = %v, %v", d, err)
	}
	if _, err := ParseDays([]string{"funday"}); err == nil {
		t.Error("funday accepted")
	}
}

func TestRulesDecideInOrder(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	alice := func(mod func(*Person)) *Person {
		p := &Person{ID: "alice", Enabled: true, Galleries: []string{"staff"}, CardNumber: "4242"}
		if mod != nil {
			mod(p)
		}
		return p
	}
	closed := &Schedule{Location: time.UTC} // no window: never open
	r := Rules{Galleries: []string{"staff"}, RequireLiveness: true}
	for _, c := range []struct {
		name  string
		rules Rules
		ev    Evidence
		want  string
	}{
		{"granted", r, Evidence{Person: alice(nil), Live: true}, Granted},
		{"spoof of an enrolled person", r, Evidence{Person: alice(nil), Live: false}, DeniedSpoof},
		{"spoof allowed when liveness is not required", Rules{}, Evidence{Person: alice(nil), Live: false}, Granted},
		{"unknown", r, Evidence{Live: true, Candidate: "bob"}, DeniedUnknown},
		{"disabled", r, Evidence{Person: alice(func(p *Person) { p.Enabled = false }), Live: true}, DeniedDisabled},
		{"not yet valid", r, Evidence{Person: alice(func(p *Person) { p.ValidFrom = now.Add(time.Hour) }), Live: true}, DeniedExpired},
		{"expired", r, Evidence{Person: alice(func(p *Person) { p.ValidUntil = now }), Live: true}, DeniedExpired},
		{"other gallery", r, Evidence{Person: alice(func(p *Person) { p.Galleries = []string{"visitors"} }), Live: true}, DeniedGallery},
		{"every gallery admitted", Rules{RequireLiveness: true}, Evidence{Person: alice(func(p *Person) { p.Galleries = []string{"visitors"} }), Live: true}, Granted},
		{"outside the schedule", Rules{Schedule: closed, RequireLiveness: true}, Evidence{Person: alice(nil), Live: true}, DeniedSchedule},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := c.rules.Check(c.ev, now)
			if v.Decision != c.want || v.Reason == "" {
				t.Fatalf("Check = %+v, want %s with a reason", v, c.want)
			}
		})
	}
}
