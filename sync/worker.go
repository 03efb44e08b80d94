package sync

import (
	"cmp"
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
// acknowledges each to the broker once it is applied (or answered).
func (s *Syncer) work(ctx context.Context) {
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
			return // held back behind a gap, or failed: not acknowledged yet
		}
	case s.cfg.topic(topicCommands):
		s.handleCommand(ctx, m.Payload())
	default:
		s.logger.Warn("mqtt: message on an unexpected topic ignored", "topic", m.Topic())
	}
	m.Ack()
}

// handleGallery applies one operation. It reports whether the broker may
// forget the message: false when it was held back behind a revision gap
// (acknowledged once applied) or the device failed to apply it.
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
	return s.apply(ctx, op, m)
}

// apply runs an operation through the service and answers it: applied,
// duplicate and rejected operations are acknowledged; one beyond a gap is
// held back (bounded) and the gallery's snapshot requested. After a
// gallery moves, held-back operations that now follow are applied.
func (s *Syncer) apply(ctx context.Context, op GalleryOp, m mqtt.Message) bool {
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
		s.stats.rejected.Add(1)
		s.enqueue(ctx, topicAcks, s.ack(op, service.SyncResult{Status: service.SyncRejected, Gallery: op.Gallery, Reason: err.Error()}))
		return true
	}
	if err != nil {
		// The device failed (storage, shutdown): no ack, so the broker
		// delivers the operation again after a reconnect.
		s.logger.Error("mqtt: apply gallery operation", "gallery", op.Gallery, "revision", op.Revision, "error", err)
		return false
	}
	switch res.Status {
	case service.SyncApplied, service.SyncRejected:
		if res.Status == service.SyncApplied {
			s.stats.applied.Add(1)
		} else {
			s.stats.rejected.Add(1)
		}
		s.kickPublisher()
		s.applyPending(ctx, op.Gallery, res.Revision)
	case service.SyncDuplicate:
		// Acknowledged again: the backend may have missed the first ack.
		s.stats.duplicates.Add(1)
		s.enqueue(ctx, topicAcks, s.ack(op, res))
	case service.SyncGap:
		s.stats.gaps.Add(1)
		s.hold(ctx, op, m, res.Revision)
		return false
	}
	return true
}

// hold keeps an operation that arrived ahead of its turn and asks for
// the gallery's snapshot.
func (s *Syncer) hold(ctx context.Context, op GalleryOp, m mqtt.Message, have uint64) {
	total := 0
	for _, ops := range s.pending {
		total += len(ops)
	}
	if total < maxPending {
		ops := s.pending[op.Gallery]
		i, found := slices.BinarySearchFunc(ops, op.Revision, func(p pendingOp, r uint64) int { return cmp.Compare(p.op.Revision, r) })
		if found {
			m.Ack() // the same revision is already held
		} else {
			s.pending[op.Gallery] = slices.Insert(ops, i, pendingOp{op, m})
		}
	} else {
		// Past the bound the snapshot will bring it; acknowledge to the
		// broker so its queue does not stall on us.
		m.Ack()
		s.logger.Warn("mqtt: too many operations held back behind gaps; dropping one (the snapshot covers it)",
			"gallery", op.Gallery, "revision", op.Revision)
	}
	s.logger.Info("mqtt: revision gap, requesting a snapshot", "gallery", op.Gallery, "have", have, "got", op.Revision)
	s.requestSnapshot(ctx, op.Gallery, have, "gap")
}

// applyPending applies held-back operations of gallery that follow rev,
// and acknowledges those it made redundant.
func (s *Syncer) applyPending(ctx context.Context, gallery string, rev uint64) {
	ops := s.pending[gallery]
	for len(ops) > 0 && ops[0].op.Revision <= rev {
		p := ops[0]
		ops = ops[1:]
		s.stats.duplicates.Add(1)
		s.enqueue(ctx, topicAcks, s.ack(p.op, service.SyncResult{Status: service.SyncDuplicate, Gallery: gallery, Revision: rev}))
		p.msg.Ack()
	}
	if len(ops) == 0 {
		delete(s.pending, gallery)
		delete(s.requested, gallery)
		return
	}
	s.pending[gallery] = ops
	if ops[0].op.Revision == rev+1 {
		p := ops[0]
		s.pending[gallery] = ops[1:]
		if s.apply(ctx, p.op, p.msg) {
			p.msg.Ack()
		}
	}
}

// requestSnapshot asks the backend for a gallery's full state, at most
// once per requestEvery for the same revision.
func (s *Syncer) requestSnapshot(ctx context.Context, gallery string, have uint64, reason string) {
	if last, ok := s.requested[gallery]; ok && reason == "gap" && last.have == have && time.Since(last.at) < requestEvery {
		return
	}
	s.requested[gallery] = snapshotRequested{have, time.Now()}
	s.stats.requests.Add(1)
	s.enqueue(ctx, topicRequests, SnapshotRequest{
		V: ProtocolVersion, Type: "snapshot_request", DeviceID: s.cfg.DeviceID, RequestID: newID(),
		Gallery: gallery, Revision: have, Reason: reason, Time: time.Now().UTC(),
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
	}}
	for _, f := range p.Faces {
		sp.Faces = append(sp.Faces, service.SyncFace{Embedding: f.Embedding, EmbedderID: f.Embedder, Photo: f.Photo})
	}
	return sp
}
