package store

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"
)

func TestEventRoundTrip(t *testing.T) {
	clk := newClock()
	db, _ := openTest(t, Options{Now: clk.Now})
	in := Event{
		CameraID: "door-1", PersonID: "p1", FaceID: 42, Gallery: "staff", Confidence: 0.87,
		Matched: true, Box: [4]float32{1, 2, 3, 4}, Meta: Metadata{"liveness": 0.99},
	}
	snap := []byte("\xff\xd8frame")
	e, err := db.AddEvent(ctx, in, snap, queueOn("events"))
	if err != nil {
		t.Fatal(err)
	}
	if e.ID != 1 || !e.Time.Equal(clk.Now()) || !e.HasSnapshot {
		t.Errorf("AddEvent = %+v", e)
	}
	got, err := db.GetEvent(ctx, e.ID)
	if err != nil || !reflect.DeepEqual(got, e) {
		t.Errorf("GetEvent = %+v, %v\nwant %+v", got, err, e)
	}
	if s, err := db.EventSnapshot(ctx, e.ID); err != nil || !bytes.Equal(s, snap) {
		t.Errorf("EventSnapshot = %q, %v", s, err)
	}
	plain, _ := db.AddEvent(ctx, Event{CameraID: "door-1", Time: time.Date(1999, 1, 1, 0, 0, 0, 5, time.UTC)}, nil, nil)
	if _, err := db.EventSnapshot(ctx, plain.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("snapshot of event without one: %v", err)
	}
	if _, err := db.GetEvent(ctx, 99); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetEvent(missing): %v", err)
	}
	if st, _ := db.OutboxStats(ctx); st.Count != 1 {
		t.Errorf("outbox count %d, want 1", st.Count)
	}
	bad := []Event{
		{Gallery: "no good"},
		{PersonID: "a\x01"},
		{Confidence: float32(math.NaN())},
		{Time: time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, e := range bad {
		if _, err := db.AddEvent(ctx, e, nil, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("AddEvent(%+v) = %v, want ErrInvalid", e, err)
		}
	}
	mustCheck(t, db)
}

func TestListEvents(t *testing.T) {
	db, _ := openTest(t, Options{})
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	// 60 events, one a minute, cameras c0..c2, person p<i%4> on matched ones.
	var all []Event
	for i := range 60 {
		e := Event{CameraID: []string{"c0", "c1", "c2"}[i%3], Time: base.Add(time.Duration(i) * time.Minute), Matched: i%2 == 0}
		if e.Matched {
			e.PersonID = []string{"p0", "p1", "p2", "p3"}[i%4]
		}
		got, err := db.AddEvent(ctx, e, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, got)
	}
	yes, no := true, false
	collect := func(q EventQuery) []uint64 {
		t.Helper()
		var ids []uint64
		for {
			page, err := db.ListEvents(ctx, q)
			if err != nil {
				t.Fatalf("ListEvents(%+v): %v", q, err)
			}
			ids = append(ids, eventIDs(page.Items)...)
			if page.Next == "" {
				return ids
			}
			q.Cursor = page.Next
		}
	}
	want := func(keep func(i int, e Event) bool) []uint64 {
		var ids []uint64
		for i := len(all) - 1; i >= 0; i-- { // newest first
			if keep(i, all[i]) {
				ids = append(ids, all[i].ID)
			}
		}
		return ids
	}
	from, to := base.Add(10*time.Minute), base.Add(20*time.Minute)
	tests := []struct {
		name string
		q    EventQuery
		keep func(int, Event) bool
	}{
		{"all", EventQuery{Limit: 7}, func(int, Event) bool { return true }},
		{"from inclusive to exclusive", EventQuery{From: from, To: to, Limit: 3},
			func(i int, _ Event) bool { return i >= 10 && i < 20 }},
		{"only from", EventQuery{From: base.Add(55 * time.Minute)}, func(i int, _ Event) bool { return i >= 55 }},
		{"only to", EventQuery{To: base.Add(3 * time.Minute)}, func(i int, _ Event) bool { return i < 3 }},
		{"person", EventQuery{PersonID: "p2", Limit: 2}, func(_ int, e Event) bool { return e.PersonID == "p2" }},
		{"person in range", EventQuery{PersonID: "p0", From: from, To: to},
			func(i int, e Event) bool { return e.PersonID == "p0" && i >= 10 && i < 20 }},
		{"cameras", EventQuery{CameraIDs: []string{"c0", "c2"}, Limit: 5},
			func(_ int, e Event) bool { return e.CameraID != "c1" }},
		{"matched", EventQuery{Matched: &yes, Limit: 4}, func(_ int, e Event) bool { return e.Matched }},
		{"unmatched on c1", EventQuery{Matched: &no, CameraIDs: []string{"c1"}},
			func(_ int, e Event) bool { return !e.Matched && e.CameraID == "c1" }},
		{"unknown person", EventQuery{PersonID: "nobody"}, func(int, Event) bool { return false }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, w := collect(tt.q), want(tt.keep); !reflect.DeepEqual(got, w) {
				t.Errorf("ids %v\nwant %v", got, w)
			}
		})
	}

	t.Run("exact page boundary has no empty last page", func(t *testing.T) {
		page, _ := db.ListEvents(ctx, EventQuery{Limit: 30})
		page, _ = db.ListEvents(ctx, EventQuery{Limit: 30, Cursor: page.Next})
		if len(page.Items) != 30 || page.Next != "" {
			t.Errorf("second page: %d items, next %q", len(page.Items), page.Next)
		}
	})
	t.Run("scan budget returns short pages that continue", func(t *testing.T) {
		defer func(n int) { maxEventScan = n }(maxEventScan)
		maxEventScan = 7
		q := EventQuery{CameraIDs: []string{"c1"}, Limit: 100}
		page, _ := db.ListEvents(ctx, q)
		if len(page.Items) >= 20 || page.Next == "" {
			t.Fatalf("first page %d items, next %q", len(page.Items), page.Next)
		}
		if got, w := collect(q), want(func(_ int, e Event) bool { return e.CameraID == "c1" }); !reflect.DeepEqual(got, w) {
			t.Errorf("ids %v\nwant %v", got, w)
		}
	})
	t.Run("cursor stable under inserts", func(t *testing.T) {
		page, _ := db.ListEvents(ctx, EventQuery{Limit: 10})
		db.AddEvent(ctx, Event{CameraID: "c9", Time: base.Add(time.Hour)}, nil, nil) // newer than all
		page2, _ := db.ListEvents(ctx, EventQuery{Limit: 10, Cursor: page.Next})
		if page2.Items[0].ID != all[49].ID {
			t.Errorf("second page starts at %d, want %d", page2.Items[0].ID, all[49].ID)
		}
	})
	if _, err := db.ListEvents(ctx, EventQuery{Cursor: encodeCursor(cursorEvents, []byte{1})}); !errors.Is(err, ErrInvalid) {
		t.Errorf("malformed cursor: %v", err)
	}
}

func eventIDs(es []Event) []uint64 {
	ids := make([]uint64, len(es))
	for i, e := range es {
		ids[i] = e.ID
	}
	return ids
}

// queueOn makes one outbox message per event, on topic, carrying the
// stored event's id.
func queueOn(topic string) EventQueue {
	return func(e Event) ([]OutboxMessage, error) {
		return []OutboxMessage{{Topic: topic, Payload: fmt.Appendf(nil, "event %d", e.ID)}}, nil
	}
}

// The queue sees the stored event (its id assigned) and runs in the
// event's transaction: its error leaves neither event nor message.
func TestAddEventQueue(t *testing.T) {
	db, _ := openTest(t, Options{})
	e, err := db.AddEvent(ctx, Event{CameraID: "door-1"}, nil, queueOn("events"))
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := db.PeekOutbox(ctx, 0)
	if err != nil || len(msgs) != 1 || string(msgs[0].Payload) != fmt.Sprintf("event %d", e.ID) {
		t.Fatalf("outbox = %+v, %v; want the message of event %d", msgs, err, e.ID)
	}
	boom := errors.New("boom")
	_, err = db.AddEvent(ctx, Event{CameraID: "door-2"}, nil, func(Event) ([]OutboxMessage, error) { return nil, boom })
	if !errors.Is(err, boom) {
		t.Fatalf("AddEvent with failing queue: %v, want boom", err)
	}
	page, err := db.ListEvents(ctx, EventQuery{})
	if err != nil || len(page.Items) != 1 {
		t.Errorf("events after failed queue = %+v, %v; want only the first", page.Items, err)
	}
	if st, _ := db.OutboxStats(ctx); st.Count != 1 {
		t.Errorf("outbox count %d after failed queue, want 1", st.Count)
	}
}

// A camera's decision keeps its track section; events recorded before the
// section existed (no flag) decode without one.
func TestEventTrackDecisionRoundTrip(t *testing.T) {
	db, _ := openTest(t, Options{})
	live := float32(0.93)
	for _, tr := range []*TrackDecision{
		{TrackID: 1796303804211001, Latency: 268 * time.Millisecond, Liveness: &live, Live: true},
		{TrackID: 7, Latency: 0},
	} {
		e, err := db.AddEvent(ctx, Event{CameraID: "door-cam", Track: tr}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := db.GetEvent(ctx, e.ID)
		if err != nil || !reflect.DeepEqual(got.Track, tr) {
			t.Errorf("track %+v: read back %+v, %v", tr, got.Track, err)
		}
	}
	plain, err := db.AddEvent(ctx, Event{CameraID: "door-cam"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := db.GetEvent(ctx, plain.ID); got.Track != nil {
		t.Errorf("event without a track reads back %+v", got.Track)
	}
	nan := float32(math.NaN())
	for _, tr := range []*TrackDecision{{Latency: -time.Second}, {Liveness: &nan}} {
		if _, err := db.AddEvent(ctx, Event{Track: tr}, nil, nil); !errors.Is(err, ErrInvalid) {
			t.Errorf("AddEvent(track %+v) = %v, want ErrInvalid", tr, err)
		}
	}
	mustCheck(t, db)
}

// TestUnmatchedEventKeepsCandidate: an unmatched event keeps its best
// candidate and confidence (the evidence for tuning thresholds) but is
// not in that person's history, which lists what matched them.
func TestUnmatchedEventKeepsCandidate(t *testing.T) {
	db, _ := openTest(t, Options{})
	hit, err := db.AddEvent(ctx, Event{CameraID: "door", PersonID: "alice", FaceID: 7, Confidence: 0.9, Matched: true}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	miss, err := db.AddEvent(ctx, Event{CameraID: "door", PersonID: "alice", FaceID: 7, Confidence: 0.61}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := db.GetEvent(ctx, miss.ID)
	if err != nil || got.Matched || got.PersonID != "alice" || got.FaceID != 7 || got.Confidence != 0.61 {
		t.Fatalf("unmatched event %+v, %v", got, err)
	}
	page, err := db.ListEvents(ctx, EventQuery{PersonID: "alice"})
	if err != nil || len(page.Items) != 1 || page.Items[0].ID != hit.ID {
		t.Fatalf("alice's history %+v, %v: want the match only", page.Items, err)
	}
	no := false
	page, err = db.ListEvents(ctx, EventQuery{Matched: &no})
	if err != nil || len(page.Items) != 1 || page.Items[0].ID != miss.ID {
		t.Fatalf("unmatched events %+v, %v", page.Items, err)
	}
	if _, err := db.Prune(ctx, RetentionPolicy{EventsMaxCount: 1}); err != nil {
		t.Fatal(err)
	}
	mustCheck(t, db)
}

// A door's decision keeps its section and is found by door and decision.
func TestEventDoorDecision(t *testing.T) {
	db, _ := openTest(t, Options{})
	for _, d := range []*DoorDecision{
		{DoorID: "front", Decision: "granted", Reason: "matched"},
		{DoorID: "front", Decision: "denied_schedule", Reason: "outside the schedule"},
		{DoorID: "back", Decision: "manual_open", Reason: "opened by hand", KeyID: "0123456789ab"},
	} {
		e, err := db.AddEvent(ctx, Event{CameraID: "cam", Door: d}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := db.GetEvent(ctx, e.ID); !reflect.DeepEqual(got.Door, d) {
			t.Errorf("door section %+v read back as %+v", d, got.Door)
		}
	}
	if _, err := db.AddEvent(ctx, Event{CameraID: "cam"}, nil, nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		q    EventQuery
		want int
	}{
		{EventQuery{DoorIDs: []string{"front"}}, 2},
		{EventQuery{DoorIDs: []string{"front", "back"}}, 3},
		{EventQuery{Decision: "granted"}, 1},
		{EventQuery{DoorIDs: []string{"back"}, Decision: "granted"}, 0},
		{EventQuery{}, 4},
	} {
		page, err := db.ListEvents(ctx, c.q)
		if err != nil || len(page.Items) != c.want {
			t.Errorf("ListEvents(%+v) = %d events, %v; want %d", c.q, len(page.Items), err, c.want)
		}
	}
	if _, err := db.AddEvent(ctx, Event{Door: &DoorDecision{Decision: "granted"}}, nil, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("a door decision without a door id: %v, want ErrInvalid", err)
	}
	mustCheck(t, db)
}
