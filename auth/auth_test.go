package auth

import (
	"strings"
	"testing"
)

func TestKeyRoundTrip(t *testing.T) {
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	id, secret, err := Parse(k.Token)
	if err != nil || id != k.ID {
		t.Fatalf("Parse(%q) = %q, %v", k.Token, id, err)
	}
	if !Matches(secret, k.Hash) {
		t.Fatal("own secret does not match")
	}
	if Matches(secret+"x", k.Hash) || Matches(strings.ToUpper(secret), k.Hash) {
		t.Fatal("other secret matches")
	}
	if strings.Contains(string(k.Hash), secret) {
		t.Fatal("hash holds the secret")
	}
	k2, _ := NewKey()
	if k2.ID == k.ID || k2.Token == k.Token {
		t.Fatal("keys repeat")
	}
}

func TestParseRejects(t *testing.T) {
	for _, tok := range []string{"", "abc", "nodot", "0123456789ab.", ".secret", "0123456789zz.s", "012345.s", "0123456789ab." + strings.Repeat("s", 200)} {
		if _, _, err := Parse(tok); err == nil {
			t.Errorf("Parse(%q) accepted", tok)
		}
	}
}

func TestScopes(t *testing.T) {
	s, err := ParseScopes("read, write,read")
	if err != nil || len(s) != 2 {
		t.Fatalf("%v %v", s, err)
	}
	for _, bad := range []string{"", " , ", "read,root"} {
		if _, err := ParseScopes(bad); err == nil {
			t.Errorf("ParseScopes(%q) accepted", bad)
		}
	}
	for _, tc := range []struct {
		have []string
		need string
		ok   bool
	}{
		{[]string{"read"}, "read", true},
		{[]string{"read"}, "write", false},
		{[]string{"write"}, "read", true},
		{[]string{"admin"}, "write", true},
		{[]string{"write"}, "admin", false},
		{nil, "read", false},
		{[]string{"admin"}, "bogus", false},
	} {
		if got := Allows(tc.have, tc.need); got != tc.ok {
			t.Errorf("Allows(%v, %s) = %v", tc.have, tc.need, got)
		}
	}
}

func TestDoorScopes(t *testing.T) {
	for _, c := range []struct {
		scopes []string
		need   string
		want   bool
	}{
		{[]string{"read", "door:front"}, DoorScope("front"), true},
		{[]string{"read", "door:front"}, DoorScope("back"), false},
		{[]string{"door:*"}, DoorScope("back"), true},
		{[]string{"admin"}, DoorScope("back"), true},
		{[]string{"write"}, DoorScope("back"), false},
		{[]string{"door:front"}, ScopeRead, false},
	} {
		if got := Allows(c.scopes, c.need); got != c.want {
			t.Errorf("Allows(%v, %q) = %v, want %v", c.scopes, c.need, got, c.want)
		}
	}
	if s, err := ParseScopes("read,door:front,door:*"); err != nil || len(s) != 3 {
		t.Errorf("ParseScopes with door scopes = %v, %v", s, err)
	}
	for _, bad := range []string{"door:", "door:front door", "door:-x", "doors:front"} {
		if _, err := ParseScopes(bad); err == nil {
			t.Errorf("ParseScopes(%q) accepted", bad)
		}
	}
}
