package door

import (
	"context"
	"fmt"

	"github.com/facedhq/faced/store"
)

// MQTT publishes every decision of a door at <prefix>/<device>/doors/<door>
// through the store's outbox, queued with the decision's event: a broker
// that is down loses nothing (fleet sync delivers it when back).
type MQTT struct {
	doorID, topic string
}

// NewMQTT returns the MQTT output of a door publishing at topic.
func NewMQTT(doorID, topic string) *MQTT { return &MQTT{doorID: doorID, topic: topic} }

// Kind implements Output.
func (m *MQTT) Kind() string { return "mqtt" }

// Messages implements Queued: the decision, as the webhook body.
func (m *MQTT) Messages(f Firing) ([]store.OutboxMessage, error) {
	f.DoorID = m.doorID
	b, err := encodeDecision(f)
	if err != nil {
		return nil, fmt.Errorf("mqtt %s: %w", m.topic, err)
	}
	return []store.OutboxMessage{{Topic: m.topic, Payload: b}}, nil
}

// Fire implements Output: the message is already in the outbox.
func (m *MQTT) Fire(context.Context, Firing) error { return nil }

// Health implements Output; the broker's state is fleet sync's, reported
// in its own metrics and status.
func (m *MQTT) Health() error { return nil }

// Close implements Output.
func (m *MQTT) Close() error { return nil }
