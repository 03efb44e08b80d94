package mqtttest

import (
	"encoding/json"
	"time"
)

// WaitEvents waits until n distinct match events (by local_id) arrived on
// topics ending in /events and returns their local ids in order of first
// arrival. It fails the test on an event without an event_id, or on a
// redelivery whose event_id differs from the first delivery's (QoS 1 may
// deliver twice, but always the same event).
func (b *Backend) WaitEvents(n int, timeout time.Duration) []uint64 {
	b.t.Helper()
	var order []uint64
	b.WaitFor("/events", timeout, func(msgs []Msg) bool {
		order = order[:0]
		idOf := map[uint64]string{}
		for _, m := range msgs {
			var e struct {
				EventID string `json:"event_id"`
				LocalID uint64 `json:"local_id"`
			}
			if err := json.Unmarshal(m.Payload, &e); err != nil || e.EventID == "" {
				b.t.Fatalf("bad event %s: %v", m.Payload, err)
			}
			if prev, ok := idOf[e.LocalID]; ok {
				if prev != e.EventID {
					b.t.Fatalf("event %d delivered twice with different event ids %s and %s", e.LocalID, prev, e.EventID)
				}
				continue
			}
			idOf[e.LocalID] = e.EventID
			order = append(order, e.LocalID)
		}
		return len(order) >= n
	})
	return order
}
