package sync

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// work applies received messages one at a time, in arrival order, and
// acknowledges each to the broker once it is applied, answered or held.
// It first finishes what a previous run left held.
func (s *Syncer) work(ctx context.Context) {
	s.resumeHeld(ctx)
	for {
		select {
		case m := <-s.incoming:
			s.handle(ctx, m)
		case <-ctx.Done():
			return
		}
	}
}

func (s *Syncer) handle(ctx context.Context, m mqtt.Message) {
	switch m.Topic() {
	case s.cfg.topic(topicGallery):
		if !s.handleGallery(ctx, m) {
			return // the device failed: not acknowledged, delivered again
		}
	case s.cfg.topic(topicCommands):
		s.handleCommand(ctx, m.Payload())
	default:
		s.logger.Warn("mqtt: message on an unexpected topic ignored", "topic", m.Topic())
	}
	m.Ack()
}

// handleGallery applies, answers or holds one operation. It reports
// whether the broker may forget the message: false only when the device
// failed to apply it (storage, shutdown), so that it is delivered again.
// An operation held behind a revision gap is in the store already: the
// broker may forget it, and must, or a gap as long as the broker's
// in-flight window (20 messages in Mosquitto) would stop every delivery.
func (s *Syncer) handleGallery(ctx context.Context, m mqtt.Message) bool {
	op, err := ParseGalleryOp(m.Payload())
	if err != nil {
		s.stats.rejected.Add(1)
		s.logger.Warn("mqtt: gallery operation refused", "error", err, "gallery", op.Gallery, "revision", op.Revision)
		s.enqueue(ctx, topicAcks, s.ack(op, service.SyncResult{
			Status: service.SyncRejected, Gallery: op.Gallery, Reason: err.Error(),
		}))
		return true
	}
	res, err := s.applyOne(ctx, op)
	if err != nil {
		return false
	}
	switch res.Status {
	case service.SyncApplied, service.SyncRejected:
		if res.Revision > 0 {
			s.applyHeld(ctx, op.Gallery, res.Revision)
		}
	case service.SyncGap:
		s.hold(ctx, op, m.Payload(), res.Revision)
	}
	return true
}

// applyOne runs an operation through the service and answers it:
// applied, rejected and duplicate operations are acknowledged (the first
// two in the transaction that records them). A gap is only counted: the
// caller holds the operation. An error means the device failed.
func (s *Syncer) applyOne(ctx context.Context, op GalleryOp) (service.SyncResult, error) {
	res, err := s.svc.ApplySync(ctx, serviceOp(op), func(r service.SyncResult) []store.OutboxMessage {
		msg, err := s.ackMessage(op, r)
		if err != nil {
			return nil
		}
		return []store.OutboxMessage{msg}
	})
	if errors.Is(err, service.ErrInvalid) {
		// Nothing could be recorded (e.g. a gallery name the store
		// refuses): answer without a revision.
		res = service.SyncResult{Status: service.SyncRejected, Gallery: op.Gallery, Reason: err.Error()}
		s.stats.rejected.Add(1)
		s.enqueue(ctx, topicAcks, s.ack(op, res))
		return res, nil
	}
	if err != nil {
		s.logger.Error("mqtt: apply gallery operation", "gallery", op.Gallery, "revision", op.Revision, "error", err)
		return res, err
	}
	switch res.Status {
	case service.SyncApplied:
		s.stats.applied.Add(1)
		s.kickPublisher()
	case service.SyncRejected:
		s.stats.rejected.Add(1)
		s.kickPublisher()
	case service.SyncDuplicate:
		// Acknowledged again: the backend may have missed the first ack.
		s.stats.duplicates.Add(1)
		s.enqueue(ctx, topicAcks, s.ack(op, res))
	case service.SyncGap:
		s.stats.gaps.Add(1)
	}
	return res, nil
}

// hold keeps an operation that arrived ahead of its turn, in the store,
// and asks for the gallery's snapshot. Past the bound (or if the store
// cannot take it) the operation is dropped: the snapshot brings its
// effect, and its ack is the snapshot's.
func (s *Syncer) hold(ctx context.Context, op GalleryOp, payload []byte, have uint64) {
	_, err := s.svc.HoldSync(ctx, store.HeldOp{Gallery: op.Gallery, Revision: op.Revision, Payload: payload}, s.limits)
	switch {
	case errors.Is(err, store.ErrHoldFull):
		s.stats.heldDropped.Add(1)
		s.logger.Warn("mqtt: too many operations held back behind gaps; dropping one (the snapshot covers it)",
			"gallery", op.Gallery, "revision", op.Revision, "error", err)
	case err != nil:
		s.stats.heldDropped.Add(1)
		s.logger.Error("mqtt: cannot hold an operation received ahead of a gap; dropping it (the snapshot covers it)",
			"gallery", op.Gallery, "revision", op.Revision, "error", err)
	}
	s.requestSnapshot(ctx, op.Gallery, have, "gap")
	// Normally nothing: the missing revision is not held. It is when
	// applying the held chain failed earlier (storage, shutdown).
	s.applyHeld(ctx, op.Gallery, have)
}

// applyHeld continues a gallery that reached revision rev with what is
// held for it: held operations at or below rev are duplicates now (a
// snapshot overtook them) and are answered so; the one at rev+1 is
// applied, and so on along the chain.
func (s *Syncer) applyHeld(ctx context.Context, gallery string, rev uint64) {
	moved := false
	for ctx.Err() == nil {
		held, err := s.svc.HeldSync(ctx, gallery, rev+1)
		if err != nil {
			s.logger.Error("mqtt: read held gallery operations", "gallery", gallery, "error", err)
			return
		}
		var stale []uint64
		var acks []store.OutboxMessage
		var next *store.HeldOp
		for i, h := range held {
			if h.Revision > rev {
				next = &held[i]
				break
			}
			stale = append(stale, h.Revision)
			op, _ := ParseGalleryOp(h.Payload) // it parsed before it was held
			if msg, err := s.ackMessage(op, service.SyncResult{Status: service.SyncDuplicate, Gallery: gallery, Revision: rev}); err == nil {
				acks = append(acks, msg)
			}
		}
		if len(stale) > 0 {
			if err := s.svc.DropHeldSync(ctx, gallery, stale, acks...); err != nil {
				s.logger.Error("mqtt: drop held gallery operations", "gallery", gallery, "error", err)
				return
			}
			moved = true
			s.stats.duplicates.Add(uint64(len(stale)))
			s.kickPublisher()
		}
		if next == nil {
			break
		}
		moved = true
		op, err := ParseGalleryOp(next.Payload)
		if err != nil {
			// It parsed when it was held (another build's rules?): answer
			// it as it would have been answered then, rather than stall.
			s.stats.rejected.Add(1)
			msg, _ := s.ackMessage(op, service.SyncResult{Status: service.SyncRejected, Gallery: gallery, Reason: err.Error()})
			if err := s.svc.DropHeldSync(ctx, gallery, []uint64{next.Revision}, msg); err != nil {
				s.logger.Error("mqtt: drop held gallery operation", "gallery", gallery, "error", err)
				return
			}
			continue
		}
		res, err := s.applyOne(ctx, op)
		if err != nil {
			return // still held: continued on the next start or operation
		}
		if res.Status == service.SyncGap || res.Revision == 0 {
			return // cannot happen: rev+1 follows rev
		}
		rev = res.Revision
	}
	if moved {
		if st, err := s.svc.HeldSyncStats(ctx); err == nil && st.Galleries[gallery] == 0 {
			delete(s.requested, gallery) // the gap is closed
		}
	}
}

// resumeHeld continues the galleries that have held operations, as a
// previous run left them (stopped between applying an operation and the
// ones it unblocked). Those still beyond a gap stay held: the snapshot
// requested then is in the outbox or answered already.
func (s *Syncer) resumeHeld(ctx context.Context) {
	st, err := s.svc.HeldSyncStats(ctx)
	if err != nil {
		s.logger.Error("mqtt: read held gallery operations", "error", err)
		return
	}
	if st.Count == 0 {
		return
	}
	s.logger.Info("mqtt: gallery operations held behind revision gaps", "operations", st.Count, "galleries", len(st.Galleries))
	revs, err := s.svc.SyncRevisions(ctx)
	if err != nil {
		s.logger.Error("mqtt: read sync revisions", "error", err)
		return
	}
	for _, g := range slices.Sorted(maps.Keys(st.Galleries)) {
		s.applyHeld(ctx, g, revs[g])
	}
}

// requestSnapshot asks the backend for a gallery's full state, at most
// once per requestEvery for the same revision.
func (s *Syncer) requestSnapshot(ctx context.Context, gallery string, have uint64, reason string) {
	now := s.now()
	if last, ok := s.requested[gallery]; ok && reason == "gap" && last.have == have && now.Sub(last.at) < s.requestEvery {
		return
	}
	if reason == "gap" {
		s.logger.Info("mqtt: revision gap, requesting a snapshot", "gallery", gallery, "have", have)
	}
	s.requested[gallery] = snapshotRequested{have, now}
	s.stats.requests.Add(1)
	s.enqueue(ctx, topicRequests, SnapshotRequest{
		V: ProtocolVersion, Type: "snapshot_request", DeviceID: s.cfg.DeviceID, RequestID: newID(),
		Gallery: gallery, Revision: have, Reason: reason, Time: now.UTC(),
	})
}

// handleCommand answers a remote action on the replies topic.
func (s *Syncer) handleCommand(ctx context.Context, payload []byte) {
	c, err := ParseCommand(payload)
	reply := Reply{V: ProtocolVersion, Type: "reply", DeviceID: s.cfg.DeviceID, RequestID: c.RequestID, Command: c.Command, Time: time.Now().UTC()}
	if err != nil {
		reply.Error = err.Error()
		s.enqueue(ctx, topicReplies, reply)
		return
	}
	switch c.Command {
	case CmdDeviceInfo:
		st := s.status(ctx)
		reply.OK, reply.Device = true, &st
	case CmdResync:
		galleries, revs, err := s.resyncGalleries(ctx, c.Gallery)
		if err != nil {
			reply.Error = err.Error()
			break
		}
		for _, g := range galleries {
			s.requestSnapshot(ctx, g, revs[g], "resync")
		}
		reply.OK, reply.Requested = true, galleries
	}
	s.enqueue(ctx, topicReplies, reply)
}

// resyncGalleries is the named gallery, or every gallery the backend has
// synced, sorted, with the revisions the device has applied.
func (s *Syncer) resyncGalleries(ctx context.Context, named string) ([]string, map[string]uint64, error) {
	if named != "" && !store.ValidGalleryName(named) {
		return nil, nil, errors.New("gallery: not a gallery name")
	}
	revs, err := s.svc.SyncRevisions(ctx)
	if err != nil {
		return nil, nil, err
	}
	if named != "" {
		return []string{named}, revs, nil
	}
	names := slices.Sorted(maps.Keys(revs))
	return names, revs, nil
}

// ack describes a result for the backend.
func (s *Syncer) ack(op GalleryOp, r service.SyncResult) Ack {
	a := Ack{
		V: ProtocolVersion, Type: "ack", DeviceID: s.cfg.DeviceID, OpID: op.OpID, Op: op.Op,
		Gallery: r.Gallery, Revision: r.Revision, Status: string(r.Status), Reason: r.Reason, Faces: r.Faces,
		Time: time.Now().UTC(),
	}
	if a.Gallery == "" {
		a.Gallery = op.Gallery
	}
	for _, sk := range r.Skipped {
		a.Skipped = append(a.Skipped, SkippedSpec{PersonID: sk.PersonID, Reason: sk.Reason})
	}
	return a
}

func (s *Syncer) ackMessage(op GalleryOp, r service.SyncResult) (store.OutboxMessage, error) {
	payload, err := json.Marshal(s.ack(op, r))
	return store.OutboxMessage{Topic: s.cfg.topic(topicAcks), Payload: payload}, err
}

// serviceOp translates the wire form.
func serviceOp(op GalleryOp) service.SyncOp {
	so := service.SyncOp{Gallery: op.Gallery, Revision: op.Revision, PersonID: op.PersonID}
	switch op.Op {
	case OpCreateGallery:
		so.Kind = service.SyncCreateGallery
	case OpDeleteGallery:
		so.Kind = service.SyncDeleteGallery
	case OpUpsertPerson:
		so.Kind = service.SyncUpsertPerson
		so.Persons = []service.SyncPerson{personOf(*op.Person)}
	case OpDeletePerson:
		so.Kind = service.SyncDeletePerson
	case OpSnapshot:
		so.Kind = service.SyncSnapshot
		for _, p := range op.Persons {
			so.Persons = append(so.Persons, personOf(p))
		}
	}
	return so
}

func personOf(p PersonSpec) service.SyncPerson {
	sp := service.SyncPerson{Person: store.Person{
		ID: p.ID, ExternalID: p.ExternalID, Name: p.Name, Email: p.Email, Phone: p.Phone, Meta: p.Meta,
		Disabled: p.Enabled != nil && !*p.Enabled, CardNumber: p.CardNumber,
	}}
	if p.ValidFrom != nil {
		sp.Person.ValidFrom = *p.ValidFrom
	}
	if p.ValidUntil != nil {
		sp.Person.ValidUntil = *p.ValidUntil
	}
	for _, f := range p.Faces {
		sp.Faces = append(sp.Faces, service.SyncFace{Embedding: f.Embedding, EmbedderID: f.Embedder, Photo: f.Photo})
	}
	return sp
}
