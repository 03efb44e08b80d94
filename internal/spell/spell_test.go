package spell

import "testing"

func TestDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"name", "name", 0}, {"nmae", "name", 1}, {"treshold", "threshold", 1},
		{"galery", "gallery", 1}, {"", "abc", 3}, {"abc", "", 3}, {"kitten", "sitting", 3},
	} {
		if got := Distance(tc.a, tc.b); got != tc.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestNearest(t *testing.T) {
	known := []string{"gallery", "n", "name", "threshold"}
	for name, want := range map[string]string{
		"treshold": "threshold", "galery": "gallery", "nmae": "name", "NAME": "name",
		"colour": "", "x": "n", "thresholds": "threshold", "zzzzzzzz": "",
	} {
		if got := Nearest(name, known); got != want {
			t.Errorf("Nearest(%q) = %q, want %q", name, got, want)
		}
	}
}
