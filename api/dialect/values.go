package dialect

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Number reads a JSON number or a numeric string (clients of every vendor
// send both) as text; given is false when raw is absent or null.
func Number(raw json.RawMessage) (s string, given bool, err error) {
	s = strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return "", false, nil
	}
	if strings.HasPrefix(s, `"`) {
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", true, fmt.Errorf("dialect: not a string: %w", err)
		}
	}
	return strings.TrimSpace(s), true, nil
}

// Float reads an optional number (or numeric string) from lo to hi;
// given is false when raw is absent or null.
func Float(raw json.RawMessage, lo, hi float64) (v float64, given bool, err error) {
	s, given, err := Number(raw)
	if !given || err != nil {
		return 0, given, err
	}
	v, err = strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || v < lo || v > hi {
		return 0, true, fmt.Errorf("dialect: %q is not a number from %v to %v", s, lo, hi)
	}
	return v, true, nil
}
