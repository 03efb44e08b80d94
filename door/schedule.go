package door

import (
	"fmt"
	"strings"
	"time"
	// The time zone database, linked in (about 450 KB): a schedule's
	// timezone must load on a device image without /usr/share/zoneinfo.
	_ "time/tzdata"
)

// Schedule is when a door admits: weekly windows in the device's time
// zone, minus holidays. A nil *Schedule admits at all times.
type Schedule struct {
	Windows  []Window
	Holidays []Date // no window applies on these days
	Location *time.Location
}

// Window is a span of the day on some weekdays; To after From, or To of
// 24:00 for the end of the day. A window does not cross midnight: write
// two.
type Window struct {
	Days     [7]bool // by time.Weekday
	From, To Clock
}

// Clock is minutes since midnight, 0..1440.
type Clock int

// Date is a calendar day.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// Open reports whether t falls in a window and not on a holiday.
func (s *Schedule) Open(t time.Time) bool {
	if s == nil {
		return true
	}
	loc := s.Location
	if loc == nil {
		loc = time.Local
	}
	t = t.In(loc)
	y, m, d := t.Date()
	for _, h := range s.Holidays {
		if h == (Date{y, m, d}) {
			return false
		}
	}
	now := Clock(t.Hour()*60 + t.Minute())
	for _, w := range s.Windows {
		if w.Days[t.Weekday()] && now >= w.From && now < w.To {
			return true
		}
	}
	return false
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

// ParseDays reads day names ("mon", "tue", ...; "mon-fri" ranges;
// "daily").
func ParseDays(names []string) ([7]bool, error) {
	var days [7]bool
	if len(names) == 0 {
		return days, fmt.Errorf("no days")
	}
	for _, n := range names {
		n = strings.ToLower(strings.TrimSpace(n))
		if n == "daily" || n == "all" {
			for i := range days {
				days[i] = true
			}
			continue
		}
		from, to, isRange := strings.Cut(n, "-")
		a, okA := weekdays[from]
		if !okA {
			return days, fmt.Errorf("day %q: want mon, tue, wed, thu, fri, sat, sun, a range such as mon-fri, or daily", n)
		}
		if !isRange {
			days[a] = true
			continue
		}
		b, okB := weekdays[to]
		if !okB {
			return days, fmt.Errorf("day %q: want a range such as mon-fri", n)
		}
		for d := a; ; d = (d + 1) % 7 {
			days[d] = true
			if d == b {
				break
			}
		}
	}
	return days, nil
}

// ParseClock reads "HH:MM", 00:00 to 24:00.
func ParseClock(s string) (Clock, error) {
	var h, m int
	if n, err := fmt.Sscanf(s, "%d:%d", &h, &m); err != nil || n != 2 || len(s) != 5 {
		return 0, fmt.Errorf("time %q: want HH:MM", s)
	}
	if h < 0 || m < 0 || m > 59 || h > 24 || (h == 24 && m != 0) {
		return 0, fmt.Errorf("time %q: want 00:00 to 24:00", s)
	}
	return Clock(h*60 + m), nil
}

// ParseDate reads "YYYY-MM-DD".
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("date %q: want YYYY-MM-DD", s)
	}
	return Date{t.Year(), t.Month(), t.Day()}, nil
}
