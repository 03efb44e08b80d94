package sync

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/facedhq/faced/store"
)

// EventQueue returns the service's event hook (service.Config.EventQueue):
// each recorded event becomes a MatchEvent at <prefix>/<device>/events,
// queued in the transaction that records it, so an event is published if
// and only if it is kept. It needs no connection: events queue while the
// broker is unreachable and go out when it is back.
func EventQueue(cfg Config) store.EventQueue {
	cfg.setDefaults()
	topic := cfg.topic(topicEvents)
	return func(e store.Event) ([]store.OutboxMessage, error) {
		m := MatchEvent{
			V: ProtocolVersion, Type: "match", EventID: newID(), DeviceID: cfg.DeviceID, LocalID: e.ID,
			Time: e.Time.UTC(), CameraID: e.CameraID, Matched: e.Matched,
			Gallery: e.Gallery, Confidence: e.Confidence, Box: e.Box,
		}
		// A near miss names its best candidate apart from a match, so a
		// backend reading person_id never takes it for one.
		if e.Matched {
			m.PersonID, m.FaceID = e.PersonID, e.FaceID
		} else {
			m.CandidatePersonID, m.CandidateFaceID = e.PersonID, e.FaceID
		}
		if len(e.Meta) > 0 {
			m.Meta = e.Meta
		}
		if d := e.Door; d != nil {
			m.DoorID, m.Decision, m.Reason = d.DoorID, d.Decision, d.Reason
		}
		if t := e.Track; t != nil {
			ms := t.Latency.Milliseconds()
			m.TrackID, m.DecisionLatencyMS, m.Liveness, m.Live = t.TrackID, &ms, t.Liveness, &t.Live
		}
		payload, err := json.Marshal(m)
		if err != nil {
			return nil, fmt.Errorf("encode event %d: %w", e.ID, err)
		}
		return []store.OutboxMessage{{Topic: topic, Payload: payload, CreatedAt: time.Now()}}, nil
	}
}

// CameraMessage is the outbox message announcing a camera's new state
// (CameraEvent at <prefix>/<device>/cameras).
func CameraMessage(cfg Config, cameraID, state, errText string, at time.Time) (store.OutboxMessage, error) {
	cfg.setDefaults()
	payload, err := json.Marshal(CameraEvent{
		V: ProtocolVersion, Type: "camera", EventID: newID(), DeviceID: cfg.DeviceID,
		CameraID: cameraID, State: state, Error: errText, Time: at.UTC(),
	})
	if err != nil {
		return store.OutboxMessage{}, fmt.Errorf("encode camera event: %w", err)
	}
	return store.OutboxMessage{Topic: cfg.topic(topicCameras), Payload: payload, CreatedAt: at}, nil
}

// DoorTopic is where a door's MQTT output publishes its decisions:
// <prefix>/<device>/doors/<door>.
func DoorTopic(cfg Config, doorID string) string {
	cfg.setDefaults()
	return cfg.topic("doors/" + doorID)
}
