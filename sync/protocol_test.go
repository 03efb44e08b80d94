package sync_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/facedhq/faced/store"
	fleetsync "github.com/facedhq/faced/sync"
)

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseGalleryOpRefuses(t *testing.T) {
	for payload, want := range map[string]string{
		``:   "bad JSON",
		`[]`: "bad JSON",
		`{"v":2,"op":"create_gallery","gallery":"g","revision":1}`:                                              "protocol version 2",
		`{"v":1,"op":"create_gallery","revision":1}`:                                                            "gallery is required",
		`{"v":1,"op":"create_gallery","gallery":"g"}`:                                                           "revision must be 1 or more",
		`{"v":1,"op":"explode","gallery":"g","revision":1}`:                                                     `unknown op "explode"`,
		`{"v":1,"op":"upsert_person","gallery":"g","revision":1}`:                                               "needs person",
		`{"v":1,"op":"delete_person","gallery":"g","revision":1}`:                                               "needs person_id",
		`{"v":1,"op":"snapshot","gallery":"g","revision":1,"x":1}`:                                              `unknown field "x"`,
		`{"v":1,"op":"snapshot","gallery":"g","revision":1} {}`:                                                 "data after",
		`{"v":1,"op":"upsert_person","gallery":"g","revision":1,"person":{"id":"a","faces":[{"photo":"%%%"}]}}`: "bad JSON",
	} {
		_, err := fleetsync.ParseGalleryOp([]byte(payload))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseGalleryOp(%s) = %v, want an error containing %q", payload, err, want)
		}
	}
	op, err := fleetsync.ParseGalleryOp([]byte(`{"v":1,"op":"upsert_person","op_id":"x","gallery":"g","revision":7,"person":{"id":"a","faces":[{"embedding":[0.5,0.5],"embedder":"e@1"},{"photo":"/9j/"}]}}`))
	if err != nil || op.Revision != 7 || len(op.Person.Faces) != 2 || string(op.Person.Faces[1].Photo) != "\xff\xd8\xff" {
		t.Errorf("valid upsert parsed as %+v, %v", op, err)
	}
}

// Downward payloads are capped at 128 MB (sync/README.md): at exactly the
// cap a payload is parsed (here it fails on what follows the object,
// which the parser sees only then), one byte more is refused for its
// size before any parsing, for operations and commands alike. The
// padding is not white space, so the test does not decode 128 MB (which
// takes a minute under -race).
func TestPayloadCap(t *testing.T) {
	const limit = 128 << 20
	for _, msg := range []string{`{"v":1,"op":"create_gallery","gallery":"g","revision":1}`, `{"v":1,"command":"device_info"}`} {
		buf := append([]byte(msg), bytes.Repeat([]byte("x"), limit+1-len(msg))...)
		parse := func(b []byte) error { _, err := fleetsync.ParseGalleryOp(b); return err }
		if strings.Contains(msg, "command") {
			parse = func(b []byte) error { _, err := fleetsync.ParseCommand(b); return err }
		}
		if err := parse(buf[:limit]); err == nil || !strings.Contains(err.Error(), "data after the object") {
			t.Errorf("%s padded to exactly 128 MB: %v, want it parsed (and refused for the padding)", msg, err)
		}
		if err := parse(buf); err == nil || !strings.Contains(err.Error(), "exceeds") {
			t.Errorf("%s padded to 128 MB + 1: %v, want refused for its size", msg, err)
		}
	}
}

// The decoders face whatever the broker delivers: never a panic, and a
// parsed operation always has what its kind needs.
func FuzzParseGalleryOp(f *testing.F) {
	f.Add([]byte(`{"v":1,"op":"upsert_person","gallery":"g","revision":1,"person":{"id":"a","faces":[{"embedding":[1]}]}}`))
	f.Add([]byte(`{"v":1,"op":"snapshot","gallery":"g","revision":3,"persons":[{"id":"a","faces":[]}]}`))
	f.Add([]byte(`{"v":1,"op":"delete_person","gallery":"g","revision":2,"person_id":"a"}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		op, err := fleetsync.ParseGalleryOp(payload)
		if err != nil {
			return
		}
		if op.Gallery == "" || op.Revision == 0 || (op.Op == fleetsync.OpUpsertPerson && op.Person == nil) ||
			(op.Op == fleetsync.OpDeletePerson && op.PersonID == "") {
			t.Fatalf("accepted an incomplete operation: %+v", op)
		}
	})
}

func FuzzParseCommand(f *testing.F) {
	f.Add([]byte(`{"v":1,"command":"resync","gallery":"g"}`))
	f.Add([]byte(`{"v":1,"command":"device_info","request_id":"r"}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		c, err := fleetsync.ParseCommand(payload)
		if err == nil && c.Command != fleetsync.CmdResync && c.Command != fleetsync.CmdDeviceInfo {
			t.Fatalf("accepted command %q", c.Command)
		}
	})
}

// TestMatchEventNamesNearMissApart: an unmatched event keeps its best
// candidate and confidence (issue 17) under candidate_person_id, never
// person_id, so a backend reading person_id cannot take a near miss for a
// match.
func TestMatchEventNamesNearMissApart(t *testing.T) {
	queue := fleetsync.EventQueue(fleetsync.Config{DeviceID: "door-1"})
	for _, tc := range []struct {
		e                 store.Event
		person, candidate string
	}{
		{store.Event{ID: 1, PersonID: "alice", FaceID: 3, Confidence: 0.9, Matched: true}, "alice", ""},
		{store.Event{ID: 2, PersonID: "alice", FaceID: 3, Confidence: 0.6}, "", "alice"},
	} {
		msgs, err := queue(tc.e)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("queue: %v, %d messages", err, len(msgs))
		}
		var m map[string]any
		if err := json.Unmarshal(msgs[0].Payload, &m); err != nil {
			t.Fatal(err)
		}
		if p, _ := m["person_id"].(string); p != tc.person {
			t.Errorf("event %d: person_id %q, want %q (%s)", tc.e.ID, p, tc.person, msgs[0].Payload)
		}
		if c, _ := m["candidate_person_id"].(string); c != tc.candidate {
			t.Errorf("event %d: candidate_person_id %q, want %q", tc.e.ID, c, tc.candidate)
		}
		if conf, _ := m["confidence"].(float64); float32(conf) != tc.e.Confidence {
			t.Errorf("event %d: confidence %v, want %v", tc.e.ID, conf, tc.e.Confidence)
		}
	}
}
