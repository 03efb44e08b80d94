package store

import (
	"errors"
	"strings"
	"testing"
)

// Ids refuse every format character (Cf); free text keeps the joiners
// scripts need and refuses the rest.
func TestFormatCharacters(t *testing.T) {
	for _, tc := range []struct {
		s          string
		idOK, txOK bool
	}{
		{"alice", true, true},
		{"al\u200bice", false, false},    // zero-width space
		{"ab\u202ecd", false, false},     // right-to-left override
		{"\ufeffx", false, false},        // byte-order mark
		{"x\u00ady", false, false},       // soft hyphen
		{"x\u2066y\u2069", false, false}, // isolates
		{"می\u200cخواهم", false, true},   // zero-width non-joiner (Persian)
		{"\U0001F469\u200D\U0001F52C", false, true},
		{"Zoë Ñandú 山田", true, true},
	} {
		idErr := checkID("person id", tc.s)
		txErr := checkText("name", tc.s, maxTextLen)
		if (idErr == nil) != tc.idOK || (txErr == nil) != tc.txOK {
			t.Errorf("%q: id %v, text %v; want id ok %v, text ok %v", tc.s, idErr, txErr, tc.idOK, tc.txOK)
		}
		for _, err := range []error{idErr, txErr} {
			if err != nil && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "invisible Unicode format character (U+")) {
				t.Errorf("%q: error %q should be ErrInvalid and name the character", tc.s, err)
			}
		}
	}
	// Through the store: a look-alike of an enrolled id is refused.
	db, _ := openTest(t, Options{})
	if _, _, err := db.CreatePerson(ctx, Person{ID: "alice"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.CreatePerson(ctx, Person{ID: "alice\u200b"}, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("look-alike id: %v, want ErrInvalid", err)
	}
	if _, err := db.AddEvent(ctx, Event{CameraID: "gate\u200b", PersonID: "alice"}, nil, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("camera id with a zero-width space: %v, want ErrInvalid", err)
	}
}

func TestMetadataDepth(t *testing.T) {
	nest := func(n int) any {
		var v any = "x"
		for range n {
			v = []any{v}
		}
		return v
	}
	if _, err := encodeMeta(Metadata{"a": nest(MaxMetaDepth - 1)}); err != nil {
		t.Fatalf("depth %d: %v", MaxMetaDepth, err)
	}
	_, err := encodeMeta(Metadata{"a": nest(MaxMetaDepth)})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "deep") {
		t.Fatalf("depth %d: %v, want ErrInvalid about nesting", MaxMetaDepth+1, err)
	}
	// Brackets inside strings are text, not nesting; typed values count.
	if _, err := encodeMeta(Metadata{"s": strings.Repeat("[{", 100) + `\"`}); err != nil {
		t.Fatalf("brackets in a string: %v", err)
	}
	type node struct {
		C *node `json:"c,omitempty"`
	}
	n := &node{}
	for range MaxMetaDepth - 1 {
		n = &node{C: n}
	}
	if _, err := encodeMeta(Metadata{"t": n}); err == nil { // 16 objects inside the top one
		t.Fatal("typed nesting beyond the limit was accepted")
	}
}
