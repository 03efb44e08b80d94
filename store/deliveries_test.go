package store

import (
	"testing"
)

// Deliveries queued with an event are kept per target, in order, apart
// from the MQTT outbox, until acknowledged.
func TestDeliveriesQueue(t *testing.T) {
	db, _ := openTest(t, Options{})
	queue := func(e Event) ([]OutboxMessage, error) {
		return []OutboxMessage{
			{Topic: "faced/d/doors/front", Payload: []byte("mqtt")},
			{Topic: "webhook:front:0", Payload: []byte{byte('0' + e.ID)}, Delivery: true},
			{Topic: "webhook:side:0", Payload: []byte("side"), Delivery: true},
		}, nil
	}
	for range 3 {
		if _, err := db.AddEvent(ctx, Event{CameraID: "cam"}, nil, queue); err != nil {
			t.Fatal(err)
		}
	}
	if st, _ := db.OutboxStats(ctx); st.Count != 3 {
		t.Fatalf("outbox holds %d, want the 3 MQTT messages only", st.Count)
	}
	front, err := db.PeekDeliveries(ctx, "webhook:front:0", 10)
	if err != nil || len(front) != 3 || string(front[0].Payload) != "1" || string(front[2].Payload) != "3" {
		t.Fatalf("front deliveries %+v, %v; want events 1, 2, 3 in order", front, err)
	}
	if err := db.AckDeliveries(ctx, front[0].Seq, front[1].Seq); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := db.DeliveryStats(ctx, "webhook:front:0"); n != 1 {
		t.Fatalf("front waiting %d after two acks, want 1", n)
	}
	if n, _, _ := db.DeliveryStats(ctx, ""); n != 4 {
		t.Fatalf("all waiting %d, want 4 (1 front, 3 side)", n)
	}
	if _, err := db.AddEvent(ctx, Event{}, nil, func(Event) ([]OutboxMessage, error) {
		return []OutboxMessage{{Delivery: true, Payload: []byte("x")}}, nil
	}); err == nil {
		t.Fatal("a delivery without a target was queued")
	}
	mustCheck(t, db)
}

// The bound drops the oldest deliveries, counted, and keeps the count
// right through enqueues, drops and acknowledgements.
func TestDeliveriesBound(t *testing.T) {
	db, _ := openTest(t, Options{})
	var batch []OutboxMessage
	for range maxDeliveries + 5 {
		batch = append(batch, OutboxMessage{Topic: "webhook:front:0", Payload: []byte("x"), Delivery: true})
	}
	if err := db.EnqueueOutbox(ctx, batch...); err != nil {
		t.Fatal(err)
	}
	n, dropped, err := db.DeliveryStats(ctx, "")
	if err != nil || n != maxDeliveries || dropped != 5 {
		t.Fatalf("after %d deliveries: %d waiting, %d dropped, %v; want %d and 5", len(batch), n, dropped, err, maxDeliveries)
	}
	first, _ := db.PeekDeliveries(ctx, "webhook:front:0", 2)
	if first[0].Seq != 6 {
		t.Fatalf("oldest kept is %d, want 6 (1-5 dropped)", first[0].Seq)
	}
	if err := db.AckDeliveries(ctx, first[0].Seq, first[0].Seq, 999999); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := db.DeliveryStats(ctx, ""); n != maxDeliveries-1 {
		t.Fatalf("after one ack (sent twice) and an unknown one: %d waiting, want %d", n, maxDeliveries-1)
	}
	if n, _, _ := db.DeliveryStats(ctx, "webhook:front:0"); n != maxDeliveries-1 {
		t.Fatalf("the target's count %d disagrees with the total", n)
	}
}
