package sync

import (
	"strings"
	"testing"
)

func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"tcp://127.0.0.1:1883", "tcp://127.0.0.1:1883"},
		{"tcp://u:s3cret@127.0.0.1:1883", "tcp://***@127.0.0.1:1883"},
		{"ssl://only-user@broker:8883", "ssl://***@broker:8883"},
		{"tcp://u:s3cret%zz@127.0.0.1:1883", "tcp://***@127.0.0.1:1883"}, // does not parse
		{"u:s3cret%zz@127.0.0.1:1883", "***@127.0.0.1:1883"},
	} {
		if got := RedactURL(tc.in); got != tc.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if err := CheckURL(tc.in); err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("CheckURL(%q) error shows the password: %v", tc.in, err)
		}
	}
	// The syncer keeps the URL without credentials, and uses them.
	c := Config{URL: "tcp://door:s3cret@127.0.0.1:1883"}
	c.setDefaults()
	if c.URL != "tcp://127.0.0.1:1883" || c.Username != "door" || c.Password != "s3cret" {
		t.Errorf("after setDefaults: %q %q %q", c.URL, c.Username, c.Password)
	}
}
