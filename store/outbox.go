package store

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// OutboxMessage is a message waiting to be published to the fleet (MQTT
// store-and-forward). Seq is assigned by the store and orders delivery.
type OutboxMessage struct {
	Seq       uint64
	Topic     string
	Payload   []byte
	CreatedAt time.Time
	// Delivery puts the message in the deliveries queue instead (door
	// webhooks, sent by their own worker): Topic then names the target.
	Delivery bool
}

// OutboxStats describes the queue. Bytes counts topics plus payloads;
// Dropped counts messages discarded by the bound since the store was made.
type OutboxStats struct {
	Count   int
	Bytes   int64
	Dropped uint64
}

const maxTopicLen = 256

func (m *OutboxMessage) size() int64 { return int64(len(m.Topic) + len(m.Payload)) }

// Outbox value: format byte, created varint ns, topic, then the payload
// to the end.
func encodeOutbox(m *OutboxMessage) []byte {
	e := encoder{b: make([]byte, 0, 12+len(m.Topic)+len(m.Payload))}
	e.byte1(recordFormat)
	e.time(m.CreatedAt)
	e.str(m.Topic)
	e.raw(m.Payload)
	return e.b
}

func decodeOutbox(key, v []byte) (OutboxMessage, error) {
	m := OutboxMessage{Seq: getU64(key)}
	d := decoder{b: v}
	d.format()
	m.CreatedAt = d.time()
	m.Topic = d.str()
	if d.err != nil {
		return OutboxMessage{}, fmt.Errorf("%w: outbox message %d: %v", ErrCorrupt, m.Seq, d.err)
	}
	if len(d.b) > 0 {
		m.Payload = append([]byte(nil), d.b...)
	}
	return m, nil
}

// The queue's count, bytes and drop counter live in the meta bucket and
// change in the same transaction as the queue, so the bound check on every
// enqueue is O(1) instead of a walk of the queue.
func metaU64(tx *bbolt.Tx, key []byte) uint64 { return getU64(tx.Bucket(bucketMeta).Get(key)) }

func setMetaU64(tx *bbolt.Tx, key []byte, v uint64) error {
	return tx.Bucket(bucketMeta).Put(key, u64(v))
}

func outboxStats(tx *bbolt.Tx) OutboxStats {
	return OutboxStats{
		Count:   int(metaU64(tx, metaOutboxCount)),
		Bytes:   int64(metaU64(tx, metaOutboxBytes)),
		Dropped: metaU64(tx, metaOutboxDropped),
	}
}

func putOutboxStats(tx *bbolt.Tx, s OutboxStats) error {
	if err := setMetaU64(tx, metaOutboxCount, uint64(s.Count)); err != nil {
		return err
	}
	if err := setMetaU64(tx, metaOutboxBytes, uint64(s.Bytes)); err != nil {
		return err
	}
	return setMetaU64(tx, metaOutboxDropped, s.Dropped)
}

// enqueue appends msgs inside tx, then drops the oldest messages until the
// queue fits Options' bounds again. It is how every operation that takes
// `out ...OutboxMessage` queues its messages atomically with its data.
// A message bigger than OutboxMaxBytes on its own could only ever be
// dropped, so it is refused (ErrInvalid) instead.
func (db *DB) enqueue(tx *bbolt.Tx, msgs []OutboxMessage) error {
	var deliveries []OutboxMessage
	kept := make([]OutboxMessage, 0, len(msgs))
	for _, m := range msgs {
		if m.Delivery {
			deliveries = append(deliveries, m)
		} else {
			kept = append(kept, m)
		}
	}
	if err := db.enqueueDeliveries(tx, deliveries); err != nil {
		return err
	}
	msgs = kept
	if len(msgs) == 0 {
		return nil
	}
	b := tx.Bucket(bucketOutbox)
	b.FillPercent = appendFill
	st := outboxStats(tx)
	now := db.now()
	for i := range msgs {
		m := msgs[i] // never write to the caller's slice
		if m.Topic == "" {
			return fmt.Errorf("%w: outbox message %d has no topic", ErrInvalid, i+1)
		}
		if err := checkIDText("outbox topic", m.Topic, maxTopicLen); err != nil {
			return err
		}
		if bound := db.opts.OutboxMaxBytes; bound > 0 && m.size() > bound {
			return fmt.Errorf("%w: outbox message of %d bytes exceeds the %d-byte bound", ErrInvalid, m.size(), bound)
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		if m.CreatedAt.IsZero() {
			m.CreatedAt = now
		}
		if err := b.Put(u64(seq), encodeOutbox(&m)); err != nil {
			return err
		}
		st.Count++
		st.Bytes += m.size()
	}
	over := func() bool {
		return (db.opts.OutboxMaxCount > 0 && st.Count > db.opts.OutboxMaxCount) ||
			(db.opts.OutboxMaxBytes > 0 && st.Bytes > db.opts.OutboxMaxBytes)
	}
	if over() {
		// Collect then delete: bbolt cursors skip entries after a Delete.
		var drop [][]byte
		c := b.Cursor()
		for k, v := c.First(); k != nil && over(); k, v = c.Next() {
			m, err := decodeOutbox(k, v)
			if err != nil {
				return err
			}
			drop = append(drop, bytes.Clone(k))
			st.Count--
			st.Bytes -= m.size()
			st.Dropped++
		}
		for _, k := range drop {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
	}
	return putOutboxStats(tx, st)
}

// EnqueueOutbox queues messages on their own.
func (db *DB) EnqueueOutbox(ctx context.Context, msgs ...OutboxMessage) error {
	if err := db.update(ctx, func(tx *bbolt.Tx) error { return db.enqueue(tx, msgs) }); err != nil {
		return fmt.Errorf("store: enqueue outbox: %w", err)
	}
	return nil
}

// PeekOutbox returns up to limit of the oldest messages without removing
// them (0 means DefaultLimit, at most MaxLimit). The publisher acks what
// the broker confirmed, so a crash between publish and ack re-sends rather
// than loses: delivery is at least once.
func (db *DB) PeekOutbox(ctx context.Context, limit int) ([]OutboxMessage, error) {
	var msgs []OutboxMessage
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		n, err := pageLimit(limit)
		if err != nil {
			return err
		}
		return walkQueue(tx, bucketOutbox, func(m OutboxMessage) bool {
			msgs = append(msgs, m)
			return len(msgs) < n
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: peek outbox: %w", err)
	}
	return msgs, nil
}

// walkQueue calls fn for the messages of a queue bucket (the outbox, the
// deliveries) in order, until fn returns false.
func walkQueue(tx *bbolt.Tx, bucket []byte, fn func(OutboxMessage) bool) error {
	c := tx.Bucket(bucket).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		m, err := decodeOutbox(k, v)
		if err != nil {
			return err
		}
		if !fn(m) {
			return nil
		}
	}
	return nil
}

// AckOutbox removes delivered messages. Unknown sequences are ignored: a
// message may have been dropped by the bound, or acked twice after a
// reconnect, and neither is the publisher's problem.
func (db *DB) AckOutbox(ctx context.Context, seqs ...uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	err := db.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketOutbox)
		st := outboxStats(tx)
		for _, seq := range seqs {
			k := u64(seq)
			v := b.Get(k)
			if v == nil {
				continue
			}
			m, err := decodeOutbox(k, v)
			if err != nil {
				return err
			}
			if err := b.Delete(k); err != nil {
				return err
			}
			st.Count--
			st.Bytes -= m.size()
		}
		return putOutboxStats(tx, st)
	})
	if err != nil {
		return fmt.Errorf("store: ack outbox: %w", err)
	}
	return nil
}

// OutboxStats reports the queue's size and how many messages the bound
// has dropped.
func (db *DB) OutboxStats(ctx context.Context) (OutboxStats, error) {
	var st OutboxStats
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		st = outboxStats(tx)
		return nil
	})
	if err != nil {
		return OutboxStats{}, fmt.Errorf("store: outbox stats: %w", err)
	}
	return st, nil
}
