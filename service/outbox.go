package service

import (
	"context"

	"github.com/facedhq/faced/store"
)

// The fleet outbox (store-and-forward to MQTT): recorded events and sync
// acknowledgements are queued by the operations that make them; the sync
// publisher drains the queue in order and removes what the broker
// confirmed.

// EnqueueOutbox queues messages on their own (replies, requests).
func (s *Service) EnqueueOutbox(ctx context.Context, msgs ...store.OutboxMessage) error {
	return s.store.EnqueueOutbox(ctx, msgs...)
}

// PeekOutbox returns up to limit of the oldest queued messages.
func (s *Service) PeekOutbox(ctx context.Context, limit int) ([]store.OutboxMessage, error) {
	return s.store.PeekOutbox(ctx, limit)
}

// AckOutbox removes delivered messages.
func (s *Service) AckOutbox(ctx context.Context, seqs ...uint64) error {
	return s.store.AckOutbox(ctx, seqs...)
}
