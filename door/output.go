package door

import (
	"context"
	"time"

	"github.com/facedhq/faced/store"
)

// DecisionManual is the decision of POST /v1/doors/{id}/open: an opening
// asked for by an admin key, not by a face.
const DecisionManual = "manual_open"

// Firing is what a door tells its outputs about one decision, once the
// decision's event is stored (EventID set).
type Firing struct {
	EventID  uint64
	DoorID   string
	Decision string // Granted, a Denied* or DecisionManual
	Reason   string
	// PersonID is the matched person ("" when none); CardNumber theirs.
	PersonID   string
	CardNumber string
	Confidence float32
	Liveness   *float32
	CameraID   string
	TrackID    uint64
	KeyID      string // DecisionManual: the admin key that asked
	Time       time.Time
}

// Opens reports whether the decision opens the door.
func (f Firing) Opens() bool { return f.Decision == Granted || f.Decision == DecisionManual }

// Output is one device or receiver a door drives. Fire is called for
// every decision (a relay acts only on those that open); it must return
// quickly, doing slow work in the background, so that no output holds up
// another or recognition. Health is nil while the output can be driven.
type Output interface {
	Kind() string // gpio, wiegand, webhook, mqtt
	Fire(ctx context.Context, f Firing) error
	Health() error
	Close() error
}

// Queued is an output whose messages are stored with the decision's event,
// in the same transaction, and sent later by a worker: a receiver that is
// down loses nothing (webhook: the deliveries queue; MQTT: the outbox).
type Queued interface {
	Messages(f Firing) ([]store.OutboxMessage, error)
}
