package sync_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/facedhq/faced/internal/mqtttest"
	"github.com/facedhq/faced/store"
	fleetsync "github.com/facedhq/faced/sync"
)

// reopen stops d's syncer and store, as a daemon restart does, and starts
// a new device on the same store file.
func reopen(t *testing.T, d *device) *device {
	t.Helper()
	path := d.db.Path()
	d.close(t)
	if err := d.db.Close(); err != nil {
		t.Fatal(err)
	}
	return newDevice(t, d.cfg, path, d.hooks...)
}

// burst is the deadline for a chain of up to a thousand operations to be
// applied, each in its own fsynced transaction: a few seconds, many more
// under -race on a busy machine.
const burst = 3 * time.Minute

// A revision gap followed by many operations (more than Mosquitto's
// in-flight window of 20) must not stop anything: operations of other
// galleries and commands still flow during the gap, the device asks for
// one snapshot, and once the missing operation (or the snapshot) arrives
// every held operation is answered, across a restart too.
//
// Issue 12 #1: before the fix, the held operations were never
// acknowledged to the broker; with 20 of them the broker stopped
// delivering, and the cases of 25 and 1000 timed out waiting for the
// command's reply.
func TestRevisionGapNeverWedges(t *testing.T) {
	for _, tc := range []struct {
		name    string
		held    int  // operations beyond the gap
		extra   int  // further operations, beyond the held-operation cap
		restart bool // restart the device during the gap
		recover string
	}{
		{"gap of 1", 1, 0, false, "missing"},
		{"gap of 25", 25, 0, false, "missing"},
		{"gap of 25, restart, snapshot", 25, 0, true, "snapshot"},
		{"gap of 1000 plus 1 over the cap, restart", 1000, 1, true, "missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testGap(t, tc.held, tc.extra, tc.restart, tc.recover)
		})
	}
}

func testGap(t *testing.T, held, extra int, restart bool, recover string) {
	broker := mqtttest.Start(t, mqtttest.Options{})
	d := newDevice(t, fleetsync.Config{URL: broker.URL()}, "")
	b := mqtttest.NewBackend(t, broker.URL(), "backend-gap", "faced/+/acks", "faced/+/requests", "faced/+/replies")
	waitConnected(t, d)
	ops := topic(d, "gallery")
	emb := embedding(t, d, "img1.jpg")

	b.Publish(ops, fleetsync.GalleryOp{V: 1, Op: fleetsync.OpCreateGallery, OpID: "op-1", Gallery: "staff", Revision: 1}, false)
	acksUntil(t, b, "op-1")
	// Revision 2 is lost; 3.. arrive.
	last := uint64(held + extra + 2)
	for rev := uint64(3); rev <= last; rev++ {
		b.Publish(ops, upsert(rev, fmt.Sprintf("p-%d", rev), emb), false)
	}
	// Meanwhile another gallery and a command still get through.
	b.Publish(ops, fleetsync.GalleryOp{V: 1, Op: fleetsync.OpCreateGallery, OpID: "visitors-1", Gallery: "visitors", Revision: 1}, false)
	b.Publish(topic(d, "commands"), fleetsync.Command{V: 1, Command: fleetsync.CmdDeviceInfo, RequestID: "during-gap"}, false)
	if r := waitReplyWithin(t, b, "during-gap", burst); !r.OK || r.Device.Galleries["staff"] != 1 {
		t.Errorf("device_info during the gap = %+v", r)
	}
	if a := acksByOp(acksUntil(t, b, "visitors-1"))["visitors-1"]; a.Status != "applied" {
		t.Errorf("other gallery during the gap: %+v", a)
	}
	// One snapshot request for the gap, however many operations are held
	// (the outbox is in order: the request left before the reply).
	reqs := mqtttest.Decode[fleetsync.SnapshotRequest](t, b.Messages("/requests"))
	if len(reqs) != 1 || reqs[0].Gallery != "staff" || reqs[0].Revision != 1 || reqs[0].Reason != "gap" {
		t.Errorf("snapshot requests during the gap = %+v, want one for staff at 1", reqs)
	}
	for _, a := range b.Messages("/acks") {
		if strings.Contains(string(a.Payload), `"gallery":"staff"`) && !strings.Contains(string(a.Payload), `"op-1"`) {
			t.Fatalf("a held operation was answered before the gap closed: %s", a.Payload)
		}
	}
	checkHeld(t, d, held, extra)

	if restart {
		d = reopen(t, d)
		waitConnected(t, d)
		if got := metrics(t, d)["faced_sync_held_operations"]; got != float64(held) {
			t.Errorf("after the restart %v operations are held, want %d", got, held)
		}
	}

	switch recover {
	case "missing":
		b.Publish(ops, upsert(2, "p-2", emb), false)
		acks := acksByOp(acksWithin(t, b, fmt.Sprintf("op-%d", held+2), burst))
		for rev := 2; rev <= held+2; rev++ {
			if a := acks[fmt.Sprintf("op-%d", rev)]; a.Status != "applied" || a.Revision != uint64(rev) {
				t.Fatalf("op-%d after the missing one arrived: %+v", rev, a)
			}
		}
		// What the cap dropped comes again (a backend answering the
		// request with the missing operations).
		for rev := uint64(held + 3); rev <= last; rev++ {
			b.Publish(ops, upsert(rev, fmt.Sprintf("p-%d", rev), emb), false)
		}
		if a := acksByOp(acksWithin(t, b, fmt.Sprintf("op-%d", last), burst))[fmt.Sprintf("op-%d", last)]; a.Status != "applied" {
			t.Errorf("op-%d sent again after the gap closed: %+v", last, a)
		}
		if got := d.svc.GallerySize("staff"); got != int(last)-1 {
			t.Errorf("staff holds %d faces, want %d", got, last-1)
		}
	case "snapshot":
		// The snapshot lands in the middle of what is held: those at or
		// below it are duplicates, those above follow it.
		mid := uint64(15)
		snap := fleetsync.GalleryOp{V: 1, Op: fleetsync.OpSnapshot, OpID: "snap", Gallery: "staff", Revision: mid, Persons: []fleetsync.PersonSpec{
			{ID: "p13", Faces: []fleetsync.FaceSpec{embedding(t, d, "img13.jpg")}},
		}}
		b.Publish(ops, snap, false)
		acks := acksByOp(acksWithin(t, b, fmt.Sprintf("op-%d", last), burst))
		if a := acks["snap"]; a.Status != "applied" || a.Revision != mid {
			t.Errorf("snapshot ack = %+v", a)
		}
		for rev := uint64(3); rev <= last; rev++ {
			a := acks[fmt.Sprintf("op-%d", rev)]
			if rev <= mid && (a.Status != "duplicate" || a.Revision != mid) || rev > mid && (a.Status != "applied" || a.Revision != rev) {
				t.Fatalf("held op-%d after a snapshot at %d: %+v", rev, mid, a)
			}
		}
		if got, want := d.svc.GallerySize("staff"), 1+int(last-mid); got != want {
			t.Errorf("staff holds %d faces, want %d", got, want)
		}
		if p := identified(t, d, "img14.jpg"); p != "p13" {
			t.Errorf("after the snapshot img14 identified as %q", p)
		}
	}
	if revs, _ := d.svc.SyncRevisions(t.Context()); revs["staff"] != last {
		t.Errorf("staff is at revision %d, want %d", revs["staff"], last)
	}
	if got := metrics(t, d)["faced_sync_held_operations"]; got != 0 {
		t.Errorf("%v operations still held after the gap closed", got)
	}
	// And the gallery keeps going.
	b.Publish(ops, fleetsync.GalleryOp{V: 1, Op: fleetsync.OpDeletePerson, OpID: "after", Gallery: "staff", Revision: last + 1, PersonID: "p-3"}, false)
	if a := acksByOp(acksUntil(t, b, "after"))["after"]; a.Status != "applied" || a.Revision != last+1 {
		t.Errorf("operation after the gap: %+v", a)
	}
}

// checkHeld asserts what the device holds during a gap.
func checkHeld(t *testing.T, d *device, held, dropped int) {
	t.Helper()
	m := metrics(t, d)
	if m["faced_sync_held_operations"] != float64(held) || m["faced_sync_held_dropped_total"] != float64(dropped) {
		t.Errorf("held %v, dropped %v; want %d and %d", m["faced_sync_held_operations"], m["faced_sync_held_dropped_total"], held, dropped)
	}
	if dropped > 0 && !strings.Contains(d.logs.String(), "too many operations held") {
		t.Errorf("the log does not say held operations were dropped")
	}
}

// A device stopped after applying the missing revision but before the
// held operations it unblocked carries on with them when it starts again,
// before anything new arrives.
func TestHeldChainResumedAfterRestart(t *testing.T) {
	broker := mqtttest.Start(t, mqtttest.Options{})
	d := newDevice(t, fleetsync.Config{URL: broker.URL()}, "")
	b := mqtttest.NewBackend(t, broker.URL(), "backend-resume", "faced/+/acks", "faced/+/replies")
	waitConnected(t, d)
	ops := topic(d, "gallery")
	emb := embedding(t, d, "img1.jpg")
	b.Publish(ops, fleetsync.GalleryOp{V: 1, Op: fleetsync.OpCreateGallery, OpID: "op-1", Gallery: "staff", Revision: 1}, false)
	for rev := uint64(3); rev <= 27; rev++ {
		b.Publish(ops, upsert(rev, fmt.Sprintf("p-%d", rev), emb), false)
	}
	b.Publish(topic(d, "commands"), fleetsync.Command{V: 1, Command: fleetsync.CmdDeviceInfo, RequestID: "held"}, false)
	waitReply(t, b, "held")
	checkHeld(t, d, 25, 0)

	// The stop falls between revision 2's transaction and the next.
	path := d.db.Path()
	d.close(t)
	d.db.Close()
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ApplySync(t.Context(), "staff", 2, false, func(*store.SyncTx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	db.Close()

	d = newDevice(t, d.cfg, path)
	acks := acksByOp(acksUntil(t, b, "op-27"))
	for rev := 3; rev <= 27; rev++ {
		if a := acks[fmt.Sprintf("op-%d", rev)]; a.Status != "applied" || a.Revision != uint64(rev) {
			t.Fatalf("op-%d after the restart: %+v", rev, a)
		}
	}
	if got := d.svc.GallerySize("staff"); got != 25 {
		t.Errorf("staff holds %d faces, want 25", got)
	}
	checkHeld(t, d, 0, 0)
}
