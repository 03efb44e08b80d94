package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestInvisibleFormatCharactersRefused: ids carrying Unicode format
// characters (category Cf: a right-to-left override, a zero-width space)
// look identical to others on screen and in logs, so two such ids would
// be two persons an operator cannot tell apart. The real server refuses
// them with an error that says why; names refuse the bidi overrides too,
// and metadata nesting is capped.
func TestInvisibleFormatCharactersRefused(t *testing.T) {
	e := newEnv(t, Config{})
	img := enc64(photo(t, "img1.jpg"))
	crudEnrol(t, e, map[string]any{"id": "alice"}, "img1.jpg")

	for _, tc := range []struct{ field, value, wantDetail string }{
		{"id", "al\u200bice", "U+200B"},          // zero-width space: looks like "alice"
		{"id", "ecila\u202e", "U+202E"},          // right-to-left override
		{"id", "\ufeffalice", "U+FEFF"},          // byte-order mark
		{"external_id", "ext\u2066-1", "U+2066"}, // left-to-right isolate
		{"name", "Bob \u202egnp.exe", "U+202E"},  // the classic spoof
		{"name", "Eve\u200b", "U+200B"},          // invisible padding
	} {
		body := map[string]any{"photo": img, tc.field: tc.value}
		if tc.field != "id" {
			body["id"] = "p-" + tc.field
		}
		b := crudJSON(t, e, "POST", "/v1/persons", e.Write, body, http.StatusBadRequest, "invalid")
		var p Problem
		if err := json.Unmarshal(b, &p); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(p.Detail, "format character") || !strings.Contains(p.Detail, tc.wantDetail) {
			t.Errorf("%s %q: detail %q should name the invisible format character %s", tc.field, tc.value, p.Detail, tc.wantDetail)
		}
	}
	// Nothing was stored under the look-alike id.
	crudJSON(t, e, "GET", "/v1/persons/al%E2%80%8Bice", e.Read, nil, http.StatusNotFound, "not_found")

	// Names written in scripts that need joiners keep them: a Persian
	// name with a zero-width non-joiner, an emoji ZWJ sequence.
	crudJSON(t, e, "POST", "/v1/persons", e.Write, map[string]any{"id": "p-fa", "name": "می\u200cخواهم", "photo": img, "allow_duplicate": true}, http.StatusCreated, "")
	crudJSON(t, e, "PATCH", "/v1/persons/p-fa", e.Write, map[string]any{"name": "\U0001F469\u200D\U0001F52C"}, http.StatusOK, "")
	// A patch cannot sneak one in either.
	crudJSON(t, e, "PATCH", "/v1/persons/p-fa", e.Write, map[string]any{"name": "x\u202ey"}, http.StatusBadRequest, "invalid")

	// Metadata nesting is capped (16 levels of objects or arrays).
	deep := func(n int) any {
		var v any = "leaf"
		for range n {
			v = map[string]any{"k": v}
		}
		return v
	}
	crudJSON(t, e, "PATCH", "/v1/persons/alice", e.Write, map[string]any{"meta": deep(16)}, http.StatusOK, "")
	b := crudJSON(t, e, "PATCH", "/v1/persons/alice", e.Write, map[string]any{"meta": deep(17)}, http.StatusBadRequest, "invalid")
	if !strings.Contains(string(b), "nest") {
		t.Errorf("deep metadata: %s, want an error about nesting", b)
	}
	// Arrays count too, and so does the enrolment path.
	var arr any = 1
	for range 40 {
		arr = []any{arr}
	}
	crudJSON(t, e, "POST", "/v1/persons", e.Write, map[string]any{"id": "deep", "photo": img, "meta": map[string]any{"a": arr}}, http.StatusBadRequest, "invalid")
}
