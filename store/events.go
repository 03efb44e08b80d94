package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/bbolt"
)

// Event is one recognition attempt seen by a camera: who it matched (if
// anyone), how confidently, where in the frame. Events outlive the persons
// and faces they name; the ids stay as history. PersonID, FaceID and
// Confidence name the best candidate whether or not it matched: Matched
// says whether it passed the request's threshold (and liveness), so an
// unmatched event keeps the evidence to tune thresholds with. Only
// matched events are in a person's history (EventQuery.PersonID).
type Event struct {
	ID         uint64
	CameraID   string
	Time       time.Time
	PersonID   string
	FaceID     uint64
	Gallery    string
	Confidence float32
	Matched    bool
	Box        [4]float32
	Meta       Metadata
	// HasSnapshot reports that a frame is stored; EventSnapshot returns it.
	HasSnapshot bool
	// Track is set on the one event a camera records per tracked face.
	Track *TrackDecision
	// Door is set on a door's access decision.
	Door *DoorDecision
}

// DoorDecision is what a door's access decision adds to its event.
type DoorDecision struct {
	DoorID   string
	Decision string // granted, denied_..., manual_open
	Reason   string
	KeyID    string // manual_open: the key that asked
}

// TrackDecision is what a camera's decision adds to its event: the track it
// closes, how long the decision took, and the liveness evidence.
type TrackDecision struct {
	TrackID uint64
	// Latency runs from the first frame in which the face was at least
	// 80 px (or the track's first frame) to the decision.
	Latency time.Duration
	// Liveness is the mean liveness score of the shots; nil when liveness
	// was not scored. Live is the verdict on it.
	Liveness *float32
	Live     bool
}

// EventQuery selects events, newest first. From is inclusive, To exclusive;
// a zero bound is open. CameraIDs, when not empty, keeps events from any of
// those cameras; Matched, when set, keeps matched or unmatched events only.
type EventQuery struct {
	PersonID  string
	CameraIDs []string
	// DoorIDs and Decision, when set, keep doors' decisions: of any of
	// those doors, with that decision.
	DoorIDs  []string
	Decision string
	From, To time.Time
	Matched  *bool
	Cursor   string
	Limit    int
}

// Events are keyed by time then id, both big-endian, so a time range is one
// contiguous key range and "newest first" is a backwards cursor walk. The
// time's sign bit is flipped so that the byte order of the key is the
// numeric order of int64 nanoseconds. events_by_id maps id → that key for
// GetEvent; events_by_person maps person NUL key → nil for a person's
// history without scanning everyone's.
const eventKeyLen = 16

func eventTimeKey(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, eventKeyLen), uint64(t.UnixNano())^(1<<63))
}

func eventKey(t time.Time, id uint64) []byte {
	return binary.BigEndian.AppendUint64(eventTimeKey(t), id)
}

func eventKeyTime(k []byte) time.Time {
	return fromUnixNano(int64(binary.BigEndian.Uint64(k) ^ (1 << 63)))
}

const (
	flagMatched     = 1 << 0
	flagHasSnapshot = 1 << 1
	flagTrack       = 1 << 2 // a track section follows the metadata
	flagLiveness    = 1 << 3 // the track section holds a liveness score
	flagLive        = 1 << 4
	flagDoor        = 1 << 5 // a door section follows the track section
)

// Event record (after the format byte): camera, person, face id uvarint,
// gallery, confidence f32, flags, box 4 × f32, metadata JSON, and with
// flagTrack the track section: track id uvarint, latency ms uvarint, and
// with flagLiveness the score f32. Time and id are in the key. Records
// written before the track section existed have no flagTrack and decode
// unchanged. With flagDoor, the door section follows: door id, decision,
// reason, key id.
func encodeEvent(e *Event) ([]byte, error) {
	meta, err := encodeMeta(e.Meta)
	if err != nil {
		return nil, err
	}
	enc := encoder{b: make([]byte, 0, 48+len(e.CameraID)+len(e.PersonID)+len(e.Gallery)+len(meta))}
	enc.byte1(recordFormat)
	enc.str(e.CameraID)
	enc.str(e.PersonID)
	enc.uvarint(e.FaceID)
	enc.str(e.Gallery)
	enc.f32(e.Confidence)
	var flags byte
	if e.Matched {
		flags |= flagMatched
	}
	if e.HasSnapshot {
		flags |= flagHasSnapshot
	}
	if t := e.Track; t != nil {
		flags |= flagTrack
		if t.Liveness != nil {
			flags |= flagLiveness
		}
		if t.Live {
			flags |= flagLive
		}
	}
	if e.Door != nil {
		flags |= flagDoor
	}
	enc.byte1(flags)
	enc.box(e.Box)
	enc.bytes(meta)
	if t := e.Track; t != nil {
		enc.uvarint(t.TrackID)
		enc.uvarint(uint64(t.Latency.Milliseconds()))
		if t.Liveness != nil {
			enc.f32(*t.Liveness)
		}
	}
	if d := e.Door; d != nil {
		enc.str(d.DoorID)
		enc.str(d.Decision)
		enc.str(d.Reason)
		enc.str(d.KeyID)
	}
	return enc.b, nil
}

func decodeEvent(key, v []byte) (Event, error) {
	if len(key) != eventKeyLen {
		return Event{}, fmt.Errorf("%w: event key %x", ErrCorrupt, key)
	}
	e := Event{Time: eventKeyTime(key), ID: binary.BigEndian.Uint64(key[8:])}
	d := decoder{b: v}
	d.format()
	e.CameraID = d.str()
	e.PersonID = d.str()
	e.FaceID = d.uvarint()
	e.Gallery = d.str()
	e.Confidence = d.f32()
	flags := d.byte1()
	e.Matched = flags&flagMatched != 0
	e.HasSnapshot = flags&flagHasSnapshot != 0
	e.Box = d.box()
	meta := d.fixed(d.length())
	if flags&flagTrack != 0 {
		t := &TrackDecision{TrackID: d.uvarint(), Live: flags&flagLive != 0}
		t.Latency = time.Duration(d.uvarint()) * time.Millisecond
		if flags&flagLiveness != 0 {
			v := d.f32()
			t.Liveness = &v
		}
		e.Track = t
	}
	if flags&flagDoor != 0 {
		e.Door = &DoorDecision{DoorID: d.str(), Decision: d.str(), Reason: d.str(), KeyID: d.str()}
	}
	if d.err != nil {
		return Event{}, fmt.Errorf("%w: event %d: %v", ErrCorrupt, e.ID, d.err)
	}
	var err error
	if e.Meta, err = decodeMeta(meta); err != nil {
		return Event{}, fmt.Errorf("event %d: %w", e.ID, err)
	}
	return e, nil
}

func checkEvent(e *Event, snapshot []byte) error {
	if err := checkIDText("camera id", e.CameraID, maxIDLen); err != nil {
		return err
	}
	if e.PersonID != "" {
		if err := checkID("person id", e.PersonID); err != nil {
			return err
		}
	}
	if e.Gallery != "" {
		if err := checkGalleryName(e.Gallery); err != nil {
			return err
		}
	}
	if !finite(e.Confidence) || !finite(e.Box[:]...) {
		return fmt.Errorf("%w: confidence or box has NaN or Inf", ErrInvalid)
	}
	if t := e.Track; t != nil && (t.Latency < 0 || (t.Liveness != nil && !finite(*t.Liveness))) {
		return fmt.Errorf("%w: track decision has a negative latency or a NaN liveness", ErrInvalid)
	}
	if d := e.Door; d != nil {
		if err := checkIDText("door id", d.DoorID, maxIDLen); err != nil || d.DoorID == "" {
			return fmt.Errorf("%w: door decision without a valid door id", ErrInvalid)
		}
		for _, f := range []struct{ what, s string }{{"decision", d.Decision}, {"reason", d.Reason}, {"key id", d.KeyID}} {
			if err := checkText(f.what, f.s, maxTextLen); err != nil {
				return err
			}
		}
	}
	if len(snapshot) > MaxImageBytes {
		return fmt.Errorf("%w: snapshot is %d bytes, limit %d", ErrInvalid, len(snapshot), MaxImageBytes)
	}
	if y := e.Time.Year(); !e.Time.IsZero() && (y < 1970 || y > 2200) {
		return fmt.Errorf("%w: event time %s", ErrInvalid, e.Time)
	}
	return nil
}

// EventQueue turns a recorded event (id and time assigned) into the
// outbox messages that announce it.
type EventQueue func(Event) ([]OutboxMessage, error)

// AddEvent records an event (and its snapshot, if not empty) and, when
// queue is not nil, the outbox messages it makes of the stored event, in
// one transaction: an event is never announced without being kept, nor
// kept without being announced. The id comes from a sequence; a zero Time
// means now.
func (db *DB) AddEvent(ctx context.Context, e Event, snapshot []byte, queue EventQueue) (Event, error) {
	err := func() error {
		if err := checkEvent(&e, snapshot); err != nil {
			return err
		}
		if e.Time.IsZero() {
			e.Time = db.now()
		}
		e.Time = normTime(e.Time)
		e.HasSnapshot = len(snapshot) > 0
		var err error
		if e.Meta, err = normMeta(e.Meta); err != nil {
			return err
		}
		return db.update(ctx, func(tx *bbolt.Tx) error {
			events, byID, snaps := tx.Bucket(bucketEvents), tx.Bucket(bucketEventsByID), tx.Bucket(bucketEventSnapshots)
			// Keys mostly arrive in time order; pack pages for appends.
			events.FillPercent, byID.FillPercent, snaps.FillPercent = appendFill, appendFill, appendFill
			id, err := events.NextSequence()
			if err != nil {
				return err
			}
			e.ID = id
			rec, err := encodeEvent(&e)
			if err != nil {
				return err
			}
			key := eventKey(e.Time, id)
			if err := events.Put(key, rec); err != nil {
				return err
			}
			if err := byID.Put(u64(id), key); err != nil {
				return err
			}
			if e.Matched && e.PersonID != "" {
				if err := tx.Bucket(bucketEventsByPerson).Put(indexKey(e.PersonID, key), nil); err != nil {
					return err
				}
			}
			if e.HasSnapshot {
				if err := snaps.Put(u64(id), snapshot); err != nil {
					return err
				}
			}
			if queue == nil {
				return nil
			}
			out, err := queue(e)
			if err != nil {
				return fmt.Errorf("queue event %d: %w", id, err)
			}
			return db.enqueue(tx, out)
		})
	}()
	if err != nil {
		return Event{}, fmt.Errorf("store: add event: %w", err)
	}
	return e, nil
}

func getEvent(tx *bbolt.Tx, id uint64) (Event, error) {
	key := tx.Bucket(bucketEventsByID).Get(u64(id))
	if key == nil {
		return Event{}, ErrNotFound
	}
	v := tx.Bucket(bucketEvents).Get(key)
	if v == nil {
		return Event{}, fmt.Errorf("%w: event index names missing key %x", ErrCorrupt, key)
	}
	return decodeEvent(key, v)
}

// GetEvent returns one event.
func (db *DB) GetEvent(ctx context.Context, id uint64) (Event, error) {
	var e Event
	err := db.view(ctx, func(tx *bbolt.Tx) (err error) {
		e, err = getEvent(tx, id)
		return err
	})
	if err != nil {
		return Event{}, fmt.Errorf("store: get event %d: %w", id, err)
	}
	return e, nil
}

// EventSnapshot returns the frame stored with an event; ErrNotFound if the
// event does not exist or has no snapshot (never kept, or pruned).
func (db *DB) EventSnapshot(ctx context.Context, id uint64) ([]byte, error) {
	var snap []byte
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketEventsByID).Get(u64(id)) == nil {
			return ErrNotFound
		}
		v := tx.Bucket(bucketEventSnapshots).Get(u64(id))
		if v == nil {
			return fmt.Errorf("no snapshot stored: %w", ErrNotFound)
		}
		snap = bytes.Clone(v)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: event snapshot %d: %w", id, err)
	}
	return snap, nil
}

// maxEventScan bounds the keys one ListEvents call examines. A filter that
// matches rarely (one camera among fifty over a year) would otherwise walk
// the whole history in a single request; instead the page comes back short
// with a cursor to continue from, and callers keep going while Next is set.
// A variable so tests can lower it.
var maxEventScan = 50_000

// ListEvents pages through events newest first. A time range is a direct
// key-range walk; a person filter walks that person's index instead of
// everyone's events. Camera and matched filters are applied while walking.
// A page may hold fewer than Limit events while Next is not empty (see
// maxEventScan).
func (db *DB) ListEvents(ctx context.Context, q EventQuery) (Page[Event], error) {
	var page Page[Event]
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		limit, err := pageLimit(q.Limit)
		if err != nil {
			return err
		}
		after, err := decodeCursor(cursorEvents, q.Cursor)
		if err != nil {
			return err
		}
		if after != nil && len(after) != eventKeyLen {
			return fmt.Errorf("%w: cursor %q", ErrInvalid, q.Cursor)
		}
		// Keys in [lo, hi) are wanted, hi lowered to the cursor.
		var lo, hi []byte
		if !q.From.IsZero() {
			lo = eventTimeKey(q.From)
		}
		if !q.To.IsZero() {
			hi = eventTimeKey(q.To)
		}
		if after != nil && (hi == nil || bytes.Compare(after, hi) < 0) {
			hi = after
		}
		events := tx.Bucket(bucketEvents)
		var c *bbolt.Cursor
		var prefix []byte
		if q.PersonID != "" {
			c, prefix = tx.Bucket(bucketEventsByPerson).Cursor(), indexPrefix(q.PersonID)
		} else {
			c = events.Cursor()
		}
		var k, v []byte
		if hi != nil {
			k, v = seekBefore(c, append(slices.Clip(prefix), hi...))
		} else if prefix != nil {
			k, v = seekBefore(c, append(slices.Clip(prefix), bytes.Repeat([]byte{0xff}, eventKeyLen+1)...))
		} else {
			k, v = c.Last()
		}
		scanned := 0
		var last []byte
		for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Prev() {
			key := k[len(prefix):]
			if lo != nil && bytes.Compare(key, lo) < 0 {
				break
			}
			if scanned++; scanned > maxEventScan {
				page.Next = encodeCursor(cursorEvents, last)
				break
			}
			last = append(last[:0], key...)
			if prefix != nil {
				if v = events.Get(key); v == nil {
					return fmt.Errorf("%w: person index names missing event key %x", ErrCorrupt, key)
				}
			}
			e, err := decodeEvent(key, v)
			if err != nil {
				return err
			}
			if q.Matched != nil && e.Matched != *q.Matched {
				continue
			}
			if len(q.CameraIDs) > 0 && !slices.Contains(q.CameraIDs, e.CameraID) {
				continue
			}
			if (len(q.DoorIDs) > 0 || q.Decision != "") && (e.Door == nil ||
				(len(q.DoorIDs) > 0 && !slices.Contains(q.DoorIDs, e.Door.DoorID)) ||
				(q.Decision != "" && e.Door.Decision != q.Decision)) {
				continue
			}
			if len(page.Items) == limit {
				page.Next = encodeCursor(cursorEvents, eventKey(page.Items[limit-1].Time, page.Items[limit-1].ID))
				break
			}
			page.Items = append(page.Items, e)
		}
		return nil
	})
	if err != nil {
		return Page[Event]{}, fmt.Errorf("store: list events: %w", err)
	}
	return page, nil
}

// seekBefore positions c on the last key strictly less than bound.
func seekBefore(c *bbolt.Cursor, bound []byte) ([]byte, []byte) {
	k, _ := c.Seek(bound)
	if k == nil {
		return c.Last()
	}
	return c.Prev()
}

// deleteEvent removes an event with its snapshot and index entries; it
// reports whether a snapshot went with it.
func deleteEvent(tx *bbolt.Tx, key, v []byte) (snapshot bool, err error) {
	e, err := decodeEvent(key, v)
	if err != nil {
		return false, err
	}
	if e.Matched && e.PersonID != "" {
		if err := tx.Bucket(bucketEventsByPerson).Delete(indexKey(e.PersonID, key)); err != nil {
			return false, err
		}
	}
	snaps := tx.Bucket(bucketEventSnapshots)
	snapshot = snaps.Get(u64(e.ID)) != nil
	if err := snaps.Delete(u64(e.ID)); err != nil {
		return false, err
	}
	if err := tx.Bucket(bucketEventsByID).Delete(u64(e.ID)); err != nil {
		return false, err
	}
	return snapshot, tx.Bucket(bucketEvents).Delete(key)
}
