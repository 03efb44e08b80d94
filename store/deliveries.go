package store

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"go.etcd.io/bbolt"
)

// The deliveries queue holds messages for receivers other than the MQTT
// broker (door webhooks), each worker taking its own target's in order.
// It shares the outbox's record format; its bound is fixed, since one
// receiver down for days must not fill the disk: beyond maxDeliveries the
// oldest message (of any target) is dropped and counted.
const maxDeliveries = 10_000

// The queue's length and drop counter live in the meta bucket, changed in
// the queue's transactions: the bound check on every enqueue is O(1).
var (
	metaDeliveriesCount   = []byte("deliveries_count")
	metaDeliveriesDropped = []byte("deliveries_dropped")
)

func (db *DB) enqueueDeliveries(tx *bbolt.Tx, msgs []OutboxMessage) error {
	if len(msgs) == 0 {
		return nil
	}
	b := tx.Bucket(bucketDeliveries)
	b.FillPercent = appendFill
	now := db.now()
	for i := range msgs {
		m := msgs[i]
		if m.Topic == "" || len(m.Topic) > maxTopicLen || strings.ContainsFunc(m.Topic, func(r rune) bool { return r < 0x20 }) {
			return fmt.Errorf("%w: delivery %d has no valid target", ErrInvalid, i+1)
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
	}
	count := metaU64(tx, metaDeliveriesCount) + uint64(len(msgs))
	over := int(count) - maxDeliveries
	if over <= 0 {
		return setMetaU64(tx, metaDeliveriesCount, count)
	}
	var drop [][]byte
	c := b.Cursor()
	for k, _ := c.First(); k != nil && len(drop) < over; k, _ = c.Next() {
		drop = append(drop, bytes.Clone(k))
	}
	for _, k := range drop {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	if err := setMetaU64(tx, metaDeliveriesCount, count-uint64(len(drop))); err != nil {
		return err
	}
	return setMetaU64(tx, metaDeliveriesDropped, metaU64(tx, metaDeliveriesDropped)+uint64(len(drop)))
}

// PeekDeliveries returns up to limit messages for target, oldest first,
// without removing them.
func (db *DB) PeekDeliveries(ctx context.Context, target string, limit int) ([]OutboxMessage, error) {
	var msgs []OutboxMessage
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		n, err := pageLimit(limit)
		if err != nil {
			return err
		}
		return walkQueue(tx, bucketDeliveries, func(m OutboxMessage) bool {
			if m.Topic == target {
				m.Delivery = true
				msgs = append(msgs, m)
			}
			return len(msgs) < n
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: peek deliveries: %w", err)
	}
	return msgs, nil
}

// AckDeliveries removes delivered messages; unknown sequences are ignored.
func (db *DB) AckDeliveries(ctx context.Context, seqs ...uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	err := db.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketDeliveries)
		count := metaU64(tx, metaDeliveriesCount)
		for _, s := range seqs {
			k := u64(s)
			if b.Get(k) == nil {
				continue
			}
			if err := b.Delete(k); err != nil {
				return err
			}
			count--
		}
		return setMetaU64(tx, metaDeliveriesCount, count)
	})
	if err != nil {
		return fmt.Errorf("store: ack deliveries: %w", err)
	}
	return nil
}

// DeliveryStats counts the messages waiting for target ("" for all) and
// those dropped by the bound since the store was made.
func (db *DB) DeliveryStats(ctx context.Context, target string) (waiting int, dropped uint64, err error) {
	err = db.view(ctx, func(tx *bbolt.Tx) error {
		dropped = metaU64(tx, metaDeliveriesDropped)
		if target == "" {
			waiting = int(metaU64(tx, metaDeliveriesCount))
			return nil
		}
		return walkQueue(tx, bucketDeliveries, func(m OutboxMessage) bool {
			if target == "" || m.Topic == target {
				waiting++
			}
			return true
		})
	})
	if err != nil {
		return 0, 0, fmt.Errorf("store: delivery stats: %w", err)
	}
	return waiting, dropped, nil
}
