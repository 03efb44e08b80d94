package sync_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/facedhq/faced/internal/mqtttest"
	fleetsync "github.com/facedhq/faced/sync"
)

// A snapshot with persons the store refuses applies the rest and lists the
// refused ones in the ack's skipped (issue 12 #6: it was rejected whole,
// and its revision consumed).
func TestSnapshotSkipsInvalidPersons(t *testing.T) {
	broker := mqtttest.Start(t, mqtttest.Options{})
	d := newDevice(t, fleetsync.Config{URL: broker.URL()}, "")
	b := mqtttest.NewBackend(t, broker.URL(), "backend-snap", "faced/+/acks")
	waitConnected(t, d)
	ops := topic(d, "gallery")
	b.Publish(ops, upsert(1, "old", embedding(t, d, "img8.jpg")), false)
	acksUntil(t, b, "op-1")

	long := strings.Repeat("x", 129)
	snap := fleetsync.GalleryOp{V: 1, Op: fleetsync.OpSnapshot, OpID: "snap", Gallery: "staff", Revision: 5, Persons: []fleetsync.PersonSpec{
		{ID: "angelina", ExternalID: "ext-a", Faces: []fleetsync.FaceSpec{embedding(t, d, "img1.jpg")}},
		{ID: long, Faces: []fleetsync.FaceSpec{embedding(t, d, "img8.jpg")}},
		{ID: "bell\x07", Faces: []fleetsync.FaceSpec{embedding(t, d, "img8.jpg")}},
		{ID: "newline-name", Name: "a\nb", Faces: []fleetsync.FaceSpec{embedding(t, d, "img8.jpg")}},
		// Already in the gallery, now with an external id another person
		// owns: skipped, and its old copy leaves the gallery.
		{ID: "old", ExternalID: "ext-a", Faces: []fleetsync.FaceSpec{embedding(t, d, "img8.jpg")}},
		{ID: "p13", Faces: []fleetsync.FaceSpec{embedding(t, d, "img13.jpg")}},
	}}
	b.Publish(ops, snap, false)
	a := acksByOp(acksUntil(t, b, "snap"))["snap"]
	if a.Status != "applied" || a.Revision != 5 || a.Faces != 2 {
		t.Errorf("snapshot ack = %+v, want applied at 5 with 2 faces", a)
	}
	var skipped []string
	for _, s := range a.Skipped {
		skipped = append(skipped, s.PersonID)
		if s.Reason == "" {
			t.Errorf("skipped %q without a reason", s.PersonID)
		}
	}
	if want := []string{long, "bell\x07", "newline-name", "old"}; !slices.Equal(skipped, want) {
		t.Errorf("skipped %q, want %q", skipped, want)
	}
	for probe, want := range map[string]string{"img2.jpg": "angelina", "img14.jpg": "p13", "img9.jpg": ""} {
		if got := identified(t, d, probe); got != want {
			t.Errorf("%s identified as %q, want %q", probe, got, want)
		}
	}
	if revs, _ := d.svc.SyncRevisions(t.Context()); revs["staff"] != 5 {
		t.Errorf("staff at revision %d, want 5", revs["staff"])
	}
}
