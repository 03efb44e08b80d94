package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	gosync "sync"
	"sync/atomic"
	"time"

	// github.com/eclipse/paho.mqtt.golang is the Eclipse Foundation's MQTT
	// 3.1.1 client, the one the issue and DESIGN.md name: QoS 1 with
	// manual acknowledgement, persistent sessions, last will, TLS.
	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

const (
	// publishWindow is how many outbox messages are in flight at once.
	publishWindow = 64
	// publishTimeout bounds the wait for one PUBACK before the
	// connection is presumed dead.
	publishTimeout = 30 * time.Second
	// outboxPoll is how often an idle publisher looks at the outbox for
	// events the service queued (it is also kicked for the syncer's own).
	outboxPoll = 100 * time.Millisecond
	// incomingDepth is how many received messages may wait for the
	// worker; beyond, the MQTT client stops reading (back-pressure).
	incomingDepth = 256
	// maxHeld and maxHeldBytes bound the operations held (in the store)
	// behind revision gaps, all galleries together. A thousand upserts of
	// 512-d embeddings are about 10 MB; photos fill the bytes sooner.
	// Past the bound, operations are dropped: the snapshot covers them.
	maxHeld      = 1000
	maxHeldBytes = 64 << 20
	// requestEvery throttles snapshot requests for one gallery.
	requestEvery = 30 * time.Second
	// firstBackoff is the first wait after a failed connection attempt;
	// it doubles up to Config.MaxReconnectInterval.
	firstBackoff = time.Second
)

// Syncer runs a device's side of fleet sync: the connection, the outbox
// publisher and the gallery-operation worker. Start it once; Close flushes
// and stops it.
type Syncer struct {
	cfg     Config
	svc     *service.Service
	logger  *slog.Logger
	client  mqtt.Client
	started time.Time

	conn     connState
	incoming chan mqtt.Message
	kick     chan struct{}
	lost     chan error
	closing  atomic.Bool

	stats stats
	// cameras, when set, describes the watched cameras for the status.
	cameras atomic.Pointer[func() []CameraInfo]
	// doors, when set, describes the doors' health for the status.
	doors atomic.Pointer[func() []DoorInfo]

	// Gap handling: the bound of held operations, and the snapshot
	// requests' throttle (owned by the worker goroutine). Fixed at New;
	// tests shorten them.
	limits       store.HoldLimits
	requestEvery time.Duration
	now          func() time.Time
	requested    map[string]snapshotRequested

	cancel  context.CancelFunc
	stopPub context.CancelFunc
	wg      gosync.WaitGroup
	pubDone chan struct{}
}

// snapshotRequested throttles repeated requests for one gallery.
type snapshotRequested struct {
	have uint64
	at   time.Time
}

// stats are the counters of Metrics.
type stats struct {
	published, reconnects, connectFailures        atomic.Uint64
	applied, duplicates, gaps, rejected, requests atomic.Uint64
	heldDropped                                   atomic.Uint64
}

// New prepares a syncer; it does not connect (Start does).
func New(cfg Config, svc *service.Service, logger *slog.Logger) (*Syncer, error) {
	cfg.setDefaults()
	if err := cfg.Check(); err != nil {
		return nil, fmt.Errorf("sync: %w", err)
	}
	tlsCfg, err := cfg.tlsConfig()
	if err != nil {
		return nil, fmt.Errorf("sync: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Syncer{
		cfg: cfg, svc: svc, logger: logger.With("component", "sync"), started: time.Now(),
		conn:         newConnState(),
		incoming:     make(chan mqtt.Message, incomingDepth),
		kick:         make(chan struct{}, 1),
		lost:         make(chan error, 1),
		limits:       store.HoldLimits{MaxCount: maxHeld, MaxBytes: maxHeldBytes},
		requestEvery: requestEvery, now: time.Now,
		requested: map[string]snapshotRequested{},
		pubDone:   make(chan struct{}),
	}
	will, err := json.Marshal(Status{V: ProtocolVersion, Type: "status", DeviceID: cfg.DeviceID, State: "offline", Reason: "connection lost", Time: time.Now().UTC()})
	if err != nil {
		return nil, err
	}
	opts := mqtt.NewClientOptions().
		AddBroker(cfg.URL).
		SetClientID("faced-"+cfg.DeviceID).
		// A persistent session: the broker keeps our subscriptions and
		// queues gallery operations while we are away.
		SetCleanSession(false).
		// Reconnection is ours (connectLoop), to log every failure with its
		// reason and count reconnects.
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetKeepAlive(cfg.KeepAlive).
		SetConnectTimeout(cfg.ConnectTimeout).
		SetWriteTimeout(publishTimeout).
		SetWill(cfg.topic(topicStatus), string(will), 1, true).
		SetUsername(cfg.Username).
		SetPassword(cfg.Password).
		// Operations are acknowledged after they are applied, so one
		// received just before a crash is delivered again.
		SetAutoAckDisabled(true).
		SetOrderMatters(true).
		SetDefaultPublishHandler(s.receive).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			s.conn.set(false)
			select {
			case s.lost <- err:
			default:
			}
		})
	if tlsCfg != nil {
		opts.SetTLSConfig(tlsCfg)
	}
	s.client = mqtt.NewClient(opts)
	return s, nil
}

// Start connects in the background (retrying with capped backoff until
// Close) and starts publishing and applying. It returns at once: the
// device works the same with or without the broker.
func (s *Syncer) Start(ctx context.Context) {
	ctx, s.cancel = context.WithCancel(ctx)
	pubCtx, stopPub := context.WithCancel(ctx)
	s.stopPub = stopPub
	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.connectLoop(ctx) }()
	go func() { defer s.wg.Done(); s.work(ctx) }()
	go func() { defer close(s.pubDone); s.publishLoop(pubCtx) }()
}

// Close flushes what it can within ctx: operations already received are
// applied, the outbox is published while connected, the retained status
// turns offline; then it disconnects. Messages left in the outbox stay in
// the store for the next start.
func (s *Syncer) Close(ctx context.Context) error {
	s.closing.Store(true)
	// The worker stops taking messages once closing is set, applying what
	// it already holds; its acks join the outbox before the flush.
	s.drainIncoming(ctx)
	s.flush(ctx)
	s.stopPub()
	<-s.pubDone
	if s.client.IsConnectionOpen() {
		s.publishStatus("offline", "shutdown", time.Second)
		s.client.Disconnect(250)
	}
	s.cancel()
	s.wg.Wait()
	st, err := s.svc.OutboxStats(context.Background())
	if err == nil && st.Count > 0 {
		s.logger.Warn("mqtt: messages left in the outbox for the next start", "count", st.Count)
	}
	return nil
}

// drainIncoming waits until the worker has taken every received message.
func (s *Syncer) drainIncoming(ctx context.Context) {
	for len(s.incoming) > 0 && ctx.Err() == nil {
		sleep(ctx, 10*time.Millisecond)
	}
}

// flush waits until the outbox is empty, the connection is down, or ctx
// ends.
func (s *Syncer) flush(ctx context.Context) {
	for ctx.Err() == nil && s.conn.up() {
		st, err := s.svc.OutboxStats(ctx)
		if err != nil || st.Count == 0 {
			return
		}
		s.kickPublisher()
		sleep(ctx, 20*time.Millisecond)
	}
}

// receive is the MQTT client's handler for every subscribed message. It
// only queues: the client's reader must not block on the store.
func (s *Syncer) receive(_ mqtt.Client, m mqtt.Message) {
	if s.closing.Load() {
		return // not acknowledged: redelivered after the restart
	}
	s.incoming <- m
}

// connectLoop connects, subscribes and announces the device, then waits
// for the connection to drop and starts over, backing off exponentially
// (capped) between failed attempts.
func (s *Syncer) connectLoop(ctx context.Context) {
	backoff := firstBackoff
	first := true
	for ctx.Err() == nil {
		if err := s.connect(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			s.stats.connectFailures.Add(1)
			s.logger.Error("mqtt: cannot connect to the fleet broker, will retry (the API keeps working; events wait in the outbox)",
				"broker", RedactURL(s.cfg.URL), "client_id", "faced-"+s.cfg.DeviceID, "error", explain(err), "retry_in", backoff)
			sleep(ctx, backoff)
			backoff = min(2*backoff, s.cfg.MaxReconnectInterval)
			continue
		}
		if !first {
			s.stats.reconnects.Add(1)
		}
		first = false
		backoff = firstBackoff
		s.logger.Info("mqtt: connected", "broker", RedactURL(s.cfg.URL), "device_id", s.cfg.DeviceID)
		s.stayConnected(ctx)
	}
}

// connect makes one attempt: CONNECT, SUBSCRIBE, the online status.
func (s *Syncer) connect(ctx context.Context) error {
	select { // a loss report from the previous connection is stale now
	case <-s.lost:
	default:
	}
	if err := wait(ctx, s.client.Connect(), s.cfg.ConnectTimeout+5*time.Second); err != nil {
		return err
	}
	subs := map[string]byte{s.cfg.topic(topicGallery): 1, s.cfg.topic(topicCommands): 1}
	if err := wait(ctx, s.client.SubscribeMultiple(subs, nil), publishTimeout); err != nil {
		s.client.Disconnect(0)
		return fmt.Errorf("subscribe: %w", err)
	}
	if err := s.publishStatus("online", "", publishTimeout); err != nil {
		s.client.Disconnect(0)
		return fmt.Errorf("publish status: %w", err)
	}
	s.conn.set(true)
	s.kickPublisher()
	return nil
}

// stayConnected refreshes the status until the connection drops or ctx
// ends.
func (s *Syncer) stayConnected(ctx context.Context) {
	tick := time.NewTicker(s.cfg.StatusInterval)
	defer tick.Stop()
	for {
		select {
		case err := <-s.lost:
			s.conn.set(false)
			if !s.closing.Load() {
				s.logger.Warn("mqtt: connection lost, reconnecting", "error", err)
			}
			return
		case <-tick.C:
			if err := s.publishStatus("online", "", publishTimeout); err != nil {
				s.logger.Warn("mqtt: status refresh failed", "error", err)
			}
		case <-ctx.Done():
			return
		}
	}
}

// publishStatus sends the retained status directly (not via the outbox:
// only the latest matters).
func (s *Syncer) publishStatus(state, reason string, timeout time.Duration) error {
	st := s.status(context.Background())
	st.State, st.Reason = state, reason
	payload, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return wait(context.Background(), s.client.Publish(s.cfg.topic(topicStatus), 1, true, payload), timeout)
}

// status describes the device.
func (s *Syncer) status(ctx context.Context) Status {
	started := s.started.UTC()
	st := Status{
		V: ProtocolVersion, Type: "status", DeviceID: s.cfg.DeviceID, State: "online", Version: s.cfg.Version,
		Embedder: s.svc.EmbedderID(), EmbedderDim: s.svc.Pipeline().EmbedderDim(), StartedAt: &started, Time: time.Now().UTC(),
	}
	if revs, err := s.svc.SyncRevisions(ctx); err == nil {
		st.Galleries = revs
	}
	if ob, err := s.svc.OutboxStats(ctx); err == nil {
		st.Outbox = &OutboxInfo{Count: ob.Count, Bytes: ob.Bytes, Dropped: ob.Dropped}
	}
	if fn := s.cameras.Load(); fn != nil {
		st.Cameras = (*fn)()
	}
	if fn := s.doors.Load(); fn != nil {
		st.Doors = (*fn)()
	}
	return st
}

// SetDoorStatus makes the status report the doors fn describes.
func (s *Syncer) SetDoorStatus(fn func() []DoorInfo) { s.doors.Store(&fn) }

// SetCameraStatus makes the status report the cameras fn describes
// (refreshed every StatusInterval).
func (s *Syncer) SetCameraStatus(fn func() []CameraInfo) { s.cameras.Store(&fn) }

// publishLoop drains the outbox in order while connected: a window of
// messages is published at QoS 1 and each is removed from the store only
// after its PUBACK. A failure leaves the rest in place for the next
// connection, so delivery is at least once and in order.
func (s *Syncer) publishLoop(ctx context.Context) {
	for ctx.Err() == nil {
		if !s.conn.waitUp(ctx) {
			return
		}
		msgs, err := s.svc.PeekOutbox(ctx, publishWindow)
		if err != nil {
			if ctx.Err() == nil {
				s.logger.Error("mqtt: read outbox", "error", err)
				sleep(ctx, time.Second)
			}
			continue
		}
		if len(msgs) == 0 {
			select {
			case <-s.kick:
			case <-time.After(outboxPoll):
			case <-ctx.Done():
			}
			continue
		}
		tokens := make([]mqtt.Token, len(msgs))
		for i, m := range msgs {
			tokens[i] = s.client.Publish(m.Topic, 1, false, m.Payload)
		}
		var delivered []uint64
		var failed error
		for i, tok := range tokens {
			// The wait ignores ctx: a message on the wire should have its
			// PUBACK counted, even while shutting down.
			if err := wait(context.Background(), tok, publishTimeout); err != nil {
				failed = err
				break
			}
			delivered = append(delivered, msgs[i].Seq)
		}
		if len(delivered) > 0 {
			// Acked with a fresh context: losing the removal would only
			// re-send (the ids make that harmless), but why re-send.
			actx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := s.svc.AckOutbox(actx, delivered...); err != nil {
				s.logger.Error("mqtt: remove delivered messages from the outbox", "error", err)
			}
			cancel()
			s.stats.published.Add(uint64(len(delivered)))
		}
		if failed != nil {
			s.logger.Warn("mqtt: publish failed; the rest of the outbox waits for the connection", "error", failed, "pending", len(msgs)-len(delivered))
			s.conn.set(false)
			// Make sure the connection loop notices (a PUBACK timeout on
			// a half-open connection does not always drop it).
			if s.client.IsConnectionOpen() {
				s.client.Disconnect(0)
				select {
				case s.lost <- failed:
				default:
				}
			}
		}
	}
}

func (s *Syncer) kickPublisher() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// enqueue queues messages of the syncer's own (acks, requests, replies).
func (s *Syncer) enqueue(ctx context.Context, topic string, v any) {
	payload, err := json.Marshal(v)
	if err == nil {
		err = s.svc.EnqueueOutbox(ctx, store.OutboxMessage{Topic: s.cfg.topic(topic), Payload: payload})
	}
	if err != nil {
		s.logger.Error("mqtt: queue message", "topic", topic, "error", err)
		return
	}
	s.kickPublisher()
}

// wait waits for a token, ctx or the timeout, and returns the token's
// error.
func wait(ctx context.Context, tok mqtt.Token, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-t.C:
		return errors.New("timed out waiting for the broker")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// explain adds the likely fix to the broker's refusals.
func explain(err error) string {
	msg := err.Error()
	switch {
	case errors.Is(err, packets.ErrorRefusedNotAuthorised), errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword):
		return msg + " (check mqtt.username and mqtt.password, or the client certificate)"
	case errors.Is(err, packets.ErrorRefusedIDRejected):
		return msg + " (the broker refused the client id faced-<device_id>)"
	case strings.Contains(msg, "x509") || strings.Contains(msg, "tls:"):
		return msg + " (check mqtt.ca_file, mqtt.cert_file and mqtt.key_file)"
	}
	return msg
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// connState is the connection's up/down state with a way to wait for up.
type connState struct {
	mu      gosync.Mutex
	isUp    bool
	changed chan struct{} // closed and replaced on every change
}

func newConnState() connState { return connState{changed: make(chan struct{})} }

func (c *connState) set(up bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.isUp != up {
		c.isUp = up
		close(c.changed)
		c.changed = make(chan struct{})
	}
}

func (c *connState) up() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.isUp
}

// waitUp blocks until the connection is up (true) or ctx ends (false).
func (c *connState) waitUp(ctx context.Context) bool {
	for {
		c.mu.Lock()
		up, ch := c.isUp, c.changed
		c.mu.Unlock()
		if up {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

// Connected reports whether the broker connection is up (the admin
// page's dashboard; faced_mqtt_connected in the metrics).
func (s *Syncer) Connected() bool { return s.conn.up() }
