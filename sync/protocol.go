package sync

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// ProtocolVersion is the "v" of every payload. A device refuses operations
// of a newer version (their meaning may have changed) and says so.
const ProtocolVersion = 1

// Topics under <prefix>/<device_id>/. Up: the device publishes; down: the
// backend does.
const (
	topicStatus   = "status"   // up, retained
	topicEvents   = "events"   // up, via the outbox
	topicCameras  = "cameras"  // up, via the outbox
	topicAcks     = "acks"     // up, via the outbox
	topicRequests = "requests" // up, via the outbox: snapshot requests
	topicReplies  = "replies"  // up, via the outbox: command replies
	topicGallery  = "gallery"  // down: gallery operations
	topicCommands = "commands" // down: remote actions
)

// topicLevel is what a prefix level or device id may contain: no MQTT
// wildcards or separators, nothing a shell or log would mangle.
var topicLevel = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

// CheckTopicLevel validates a device id or one level of the prefix.
func CheckTopicLevel(s string) error {
	if !topicLevel.MatchString(s) {
		return fmt.Errorf("%q: want 1-64 of A-Z a-z 0-9 _ . -", s)
	}
	return nil
}

// CheckPrefix validates a topic prefix: one or more levels joined by "/".
func CheckPrefix(p string) error {
	for _, level := range strings.Split(p, "/") {
		if err := CheckTopicLevel(level); err != nil {
			return fmt.Errorf("topic prefix level %w", err)
		}
	}
	return nil
}

// Status is the retained message at <prefix>/<device>/status.
type Status struct {
	V           int               `json:"v"`
	Type        string            `json:"type"` // "status"
	DeviceID    string            `json:"device_id"`
	State       string            `json:"state"` // online | offline
	Reason      string            `json:"reason,omitempty"`
	Version     string            `json:"version,omitempty"`
	Embedder    string            `json:"embedder,omitempty"`
	EmbedderDim int               `json:"embedder_dim,omitempty"`
	StartedAt   *time.Time        `json:"started_at,omitempty"`
	Time        time.Time         `json:"time"`
	Galleries   map[string]uint64 `json:"galleries,omitempty"` // gallery → last applied revision
	Outbox      *OutboxInfo       `json:"outbox,omitempty"`
	Cameras     []CameraInfo      `json:"cameras,omitempty"`
	Doors       []DoorInfo        `json:"doors,omitempty"`
}

// DoorInfo is a door's health in the status: Error names the outputs that
// cannot be driven.
type DoorInfo struct {
	ID      string `json:"id"`
	Healthy bool   `json:"healthy"`
	Error   string `json:"error,omitempty"`
}

// CameraEvent is published at <prefix>/<device>/cameras, through the
// outbox, each time a watched camera's state changes: running,
// reconnecting (the source failed or stopped; Error says why), ended (a
// clip played out) or stopped (the daemon is stopping).
type CameraEvent struct {
	V        int       `json:"v"`
	Type     string    `json:"type"` // "camera"
	EventID  string    `json:"event_id"`
	DeviceID string    `json:"device_id"`
	CameraID string    `json:"camera_id"`
	State    string    `json:"state"`
	Error    string    `json:"error,omitempty"`
	Time     time.Time `json:"time"`
}

// CameraInfo is a watched camera's state in the status: running,
// reconnecting (with the error), ended or stopped.
type CameraInfo struct {
	ID    string `json:"id"`
	State string `json:"state"`
	Error string `json:"error,omitempty"`
}

// OutboxInfo describes the device's queue of unsent messages.
type OutboxInfo struct {
	Count   int    `json:"count"`
	Bytes   int64  `json:"bytes"`
	Dropped uint64 `json:"dropped"`
}

// MatchEvent is published at <prefix>/<device>/events for every recorded
// event. EventID is unique (random), so a redelivered event is recognised;
// LocalID is the event's id in the device's REST API.
type MatchEvent struct {
	V        int       `json:"v"`
	Type     string    `json:"type"` // "match"
	EventID  string    `json:"event_id"`
	DeviceID string    `json:"device_id"`
	LocalID  uint64    `json:"local_id"`
	Time     time.Time `json:"time"`
	CameraID string    `json:"camera_id,omitempty"`
	Matched  bool      `json:"matched"`
	PersonID string    `json:"person_id,omitempty"`
	FaceID   uint64    `json:"face_id,omitempty"`
	// The best candidate of an unmatched event (below the threshold, or
	// refused as not live); Confidence is its confidence.
	CandidatePersonID string     `json:"candidate_person_id,omitempty"`
	CandidateFaceID   uint64     `json:"candidate_face_id,omitempty"`
	Gallery           string     `json:"gallery,omitempty"`
	Confidence        float32    `json:"confidence"`
	Box               [4]float32 `json:"box"`
	Meta              any        `json:"meta,omitempty"`
	// Set on a camera's decision (see the REST API's events).
	TrackID           uint64   `json:"track_id,omitempty"`
	DecisionLatencyMS *int64   `json:"decision_latency_ms,omitempty"`
	Liveness          *float32 `json:"liveness,omitempty"`
	Live              *bool    `json:"live,omitempty"`
	// Set on a door's decision.
	DoorID   string `json:"door_id,omitempty"`
	Decision string `json:"decision,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

// Operation kinds of gallery operations.
const (
	OpCreateGallery = "create_gallery"
	OpDeleteGallery = "delete_gallery"
	OpUpsertPerson  = "upsert_person"
	OpDeletePerson  = "delete_person"
	OpSnapshot      = "snapshot"
)

// GalleryOp is a message at <prefix>/<device>/gallery.
type GalleryOp struct {
	V        int    `json:"v"`
	Op       string `json:"op"`
	OpID     string `json:"op_id,omitempty"` // echoed in the ack
	Gallery  string `json:"gallery"`
	Revision uint64 `json:"revision"`
	// upsert_person: the person; snapshot: every person of the gallery.
	Person   *PersonSpec  `json:"person,omitempty"`
	Persons  []PersonSpec `json:"persons,omitempty"`
	PersonID string       `json:"person_id,omitempty"` // delete_person
}

// PersonSpec is a person with its faces in one gallery.
type PersonSpec struct {
	ID         string         `json:"id"`
	ExternalID string         `json:"external_id,omitempty"`
	Name       string         `json:"name,omitempty"`
	Email      string         `json:"email,omitempty"`
	Phone      string         `json:"phone,omitempty"`
	Meta       map[string]any `json:"meta,omitempty"`
	// Access for doors: enabled (absent: true), the validity period
	// (absent: no bound), the Wiegand card number (decimal digits).
	Enabled    *bool      `json:"enabled,omitempty"`
	ValidFrom  *time.Time `json:"valid_from,omitempty"`
	ValidUntil *time.Time `json:"valid_until,omitempty"`
	CardNumber string     `json:"card_number,omitempty"`
	Faces      []FaceSpec `json:"faces"`
}

// FaceSpec is one face: an embedding with its embedder id, a photo
// (base64 JPEG/PNG), or both.
type FaceSpec struct {
	Embedding []float32 `json:"embedding,omitempty"`
	Embedder  string    `json:"embedder,omitempty"`
	Photo     []byte    `json:"photo,omitempty"` // base64 in JSON
}

// Ack is published at <prefix>/<device>/acks for every gallery operation
// received: Revision is the gallery's revision after it.
type Ack struct {
	V        int           `json:"v"`
	Type     string        `json:"type"` // "ack"
	DeviceID string        `json:"device_id"`
	OpID     string        `json:"op_id,omitempty"`
	Op       string        `json:"op,omitempty"`
	Gallery  string        `json:"gallery,omitempty"`
	Revision uint64        `json:"revision"`
	Status   string        `json:"status"` // applied | duplicate | rejected
	Reason   string        `json:"reason,omitempty"`
	Faces    int           `json:"faces,omitempty"`
	Skipped  []SkippedSpec `json:"skipped,omitempty"`
	Time     time.Time     `json:"time"`
}

// SkippedSpec is a snapshot's person that was not applied.
type SkippedSpec struct {
	PersonID string `json:"person_id"`
	Reason   string `json:"reason"`
}

// SnapshotRequest is published at <prefix>/<device>/requests when the
// device needs a gallery's full state: Revision is what it has.
type SnapshotRequest struct {
	V         int       `json:"v"`
	Type      string    `json:"type"` // "snapshot_request"
	DeviceID  string    `json:"device_id"`
	RequestID string    `json:"request_id"`
	Gallery   string    `json:"gallery"`
	Revision  uint64    `json:"revision"`
	Reason    string    `json:"reason"` // gap | resync
	Time      time.Time `json:"time"`
}

// Commands of <prefix>/<device>/commands.
const (
	CmdResync     = "resync"      // request snapshots (one gallery, or all)
	CmdDeviceInfo = "device_info" // reply with the device's description
)

// Command is a remote action.
type Command struct {
	V         int    `json:"v"`
	Command   string `json:"command"`
	RequestID string `json:"request_id,omitempty"`
	Gallery   string `json:"gallery,omitempty"` // resync: one gallery
}

// Reply answers a command at <prefix>/<device>/replies.
type Reply struct {
	V         int       `json:"v"`
	Type      string    `json:"type"` // "reply"
	DeviceID  string    `json:"device_id"`
	RequestID string    `json:"request_id,omitempty"`
	Command   string    `json:"command"`
	OK        bool      `json:"ok"`
	Error     string    `json:"error,omitempty"`
	Device    *Status   `json:"device,omitempty"`
	Requested []string  `json:"requested,omitempty"` // resync: galleries asked for
	Time      time.Time `json:"time"`
}

// maxPayload bounds a downward message: a snapshot of 20 000 persons with
// one 512-d embedding each is about 100 MB of JSON.
const maxPayload = 128 << 20

// decodeStrict parses one JSON object, refusing unknown fields (a typo in
// a backend must not silently drop data) and trailing data.
func decodeStrict(payload []byte, v any) error {
	if len(payload) > maxPayload {
		return fmt.Errorf("payload of %d bytes exceeds %d", len(payload), maxPayload)
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("bad JSON: %w", err)
	}
	if dec.More() {
		return errors.New("bad JSON: data after the object")
	}
	return nil
}

// ParseGalleryOp decodes and validates a gallery operation. The returned
// op is filled as far as it could be read even on error, so the ack can
// name its gallery, revision and id.
func ParseGalleryOp(payload []byte) (GalleryOp, error) {
	var op GalleryOp
	if err := decodeStrict(payload, &op); err != nil {
		return op, err
	}
	if op.V != ProtocolVersion {
		return op, fmt.Errorf("protocol version %d, this device speaks %d", op.V, ProtocolVersion)
	}
	if op.Gallery == "" {
		return op, errors.New("gallery is required")
	}
	if op.Revision == 0 {
		return op, errors.New("revision must be 1 or more")
	}
	switch op.Op {
	case OpCreateGallery, OpDeleteGallery:
	case OpUpsertPerson:
		if op.Person == nil {
			return op, errors.New("upsert_person needs person")
		}
	case OpDeletePerson:
		if op.PersonID == "" {
			return op, errors.New("delete_person needs person_id")
		}
	case OpSnapshot:
	default:
		return op, fmt.Errorf("unknown op %q", op.Op)
	}
	return op, nil
}

// ParseCommand decodes and validates a command.
func ParseCommand(payload []byte) (Command, error) {
	var c Command
	if err := decodeStrict(payload, &c); err != nil {
		return c, err
	}
	if c.V != ProtocolVersion {
		return c, fmt.Errorf("protocol version %d, this device speaks %d", c.V, ProtocolVersion)
	}
	if c.Command != CmdResync && c.Command != CmdDeviceInfo {
		return c, fmt.Errorf("unknown command %q (want %s or %s)", c.Command, CmdResync, CmdDeviceInfo)
	}
	return c, nil
}

// newID returns a random 128-bit id in UUID version 4 form.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
