package door

// The webhook output: every decision of a door POSTed as signed JSON to a
// receiver, through the store's deliveries queue.
//
// Contract (receivers rely on it):
//
//	POST <url>
//	Content-Type: application/json
//	X-Faced-Timestamp: <unix seconds at send time>
//	X-Faced-Signature: sha256=<lowercase hex HMAC-SHA256(secret, "<timestamp>.<body>")>
//	X-Faced-Event-Id: <event_id>
//
//	{"event_id": 42, "door_id": "front", "decision": "granted", "opens": true,
//	 "person_id": "p-1" | null, "time": "2026-12-03T14:00:01.123Z",
//	 "reason": "...", "confidence": 0.93, "liveness": 0.98,
//	 "camera_id": "cam-1", "track_id": 7, "card_number": "...", "key_id": "..."}
//
// Every decision is sent, granted and denied alike: the receiver decides
// what to do with it. A receiver verifies with Verify (or recomputes the
// HMAC over the exact bytes received), refuses timestamps outside a few
// minutes of its clock, and drops event_ids it has already seen.
//
// Delivery is at least once and in order. The controller stores the
// message (Messages) in the transaction of the decision's event, so a
// decision is never sent without being recorded, nor recorded without
// being sent. The worker (Run) sends the oldest message of its target and
// removes it only on a 2xx; any other answer, a refused connection or a
// timeout retries that same message with exponential backoff (1 s
// doubling to 60 s), never skipping ahead, so the receiver sees decisions
// in the order they were made. A crash between the receiver's 2xx and the
// removal sends the message again: receivers deduplicate by event_id.
// Redirects are not followed (a POST redirected becomes a GET): a 3xx is a
// failure whose error names the new location. The queue is bounded by
// the store (10 000 messages over all targets, the oldest dropped and
// counted), so a receiver down for days cannot fill the disk.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/facedhq/faced/store"
)

// Webhook defaults and bounds.
const (
	DefaultWebhookTimeout = 5 * time.Second
	// MinWebhookSecret is the shortest secret accepted: an HMAC key
	// shorter than this is guessable offline from one signed message.
	MinWebhookSecret = 16

	webhookMinBackoff = time.Second
	webhookMaxBackoff = time.Minute
	// webhookIdlePoll re-reads the queue now and then while idle, so a
	// message queued without a Fire (a bug, or another process) still
	// goes out.
	webhookIdlePoll = time.Minute
	webhookPeek     = 64
)

// Signature errors returned by Verify.
var (
	ErrBadSignature   = errors.New("webhook signature does not match")
	ErrStaleTimestamp = errors.New("webhook timestamp outside the allowed skew")
)

// WebhookConfig is one webhook output of a door.
type WebhookConfig struct {
	DoorID string
	// Index is the output's position among the door's outputs; with
	// DoorID it names the output's queue, so it must stay stable across
	// restarts for waiting messages to be sent.
	Index int
	// URL is where decisions are POSTed (http or https).
	URL string
	// Secret is the HMAC key shared with the receiver, at least
	// MinWebhookSecret bytes.
	Secret string
	// Timeout bounds one attempt; zero means DefaultWebhookTimeout.
	Timeout time.Duration
}

// Webhook is the HTTP webhook output. It is Queued: the controller stores
// Messages with the decision's event, Fire wakes the worker, and Run (one
// goroutine per webhook) sends them.
type Webhook struct {
	cfg    WebhookConfig
	secret []byte
	target string
	shown  string // the URL without credentials or query, for logs and errors
	db     *store.DB
	log    *slog.Logger
	client *http.Client
	kick   chan struct{}

	// Backoff between failed attempts; tests shorten them.
	minBackoff, maxBackoff time.Duration

	mu           sync.Mutex
	failures     int // consecutive failed attempts
	failingSince time.Time
	lastErr      string
	delivered    uint64
	lastDelivery time.Time
	lastLatency  time.Duration
}

// WebhookStats describes a webhook for the API and metrics.
type WebhookStats struct {
	Target string `json:"target"`
	// Waiting counts this target's messages in the queue.
	Waiting int `json:"waiting"`
	// Dropped counts messages dropped by the queue's bound since the
	// store was made, over all targets (the store counts them together).
	Dropped uint64 `json:"dropped"`
	// Delivered counts messages acknowledged since the output started.
	Delivered uint64 `json:"delivered"`
	// Failures counts consecutive failed attempts (0 when healthy).
	Failures     int       `json:"failures"`
	FailingSince time.Time `json:"failing_since,omitzero"`
	LastError    string    `json:"last_error,omitempty"`
	LastDelivery time.Time `json:"last_delivery,omitzero"`
	// LastLatency runs from the message being queued (with its event) to
	// the receiver's 2xx: a few ms on a LAN, the outage's length after one.
	LastLatency time.Duration `json:"last_latency_ns"`
}

// NewWebhook checks cfg and makes the output. Its errors name the setting.
func NewWebhook(cfg WebhookConfig, db *store.DB, log *slog.Logger) (*Webhook, error) {
	where := fmt.Sprintf("door %q output %d (webhook)", cfg.DoorID, cfg.Index)
	if cfg.DoorID == "" {
		where = fmt.Sprintf("output %d (webhook)", cfg.Index)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s: "+format, append([]any{where}, args...)...)
	}
	switch {
	case cfg.DoorID == "":
		return nil, bad("door id: required")
	case strings.ContainsFunc(cfg.DoorID, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return nil, bad("door id: contains control characters")
	case len(cfg.DoorID) > 200:
		return nil, bad("door id: longer than 200 bytes")
	case cfg.Index < 0:
		return nil, bad("index: must not be negative, got %d", cfg.Index)
	case len(cfg.Secret) == 0:
		return nil, bad("secret: required (the receiver checks the HMAC-SHA256 signature with it)")
	case len(cfg.Secret) < MinWebhookSecret:
		return nil, bad("secret: must be at least %d bytes, got %d", MinWebhookSecret, len(cfg.Secret))
	case cfg.Timeout < 0:
		return nil, bad("timeout: must not be negative, got %s", cfg.Timeout)
	case db == nil:
		return nil, bad("no store")
	}
	if cfg.URL == "" {
		return nil, bad("url: required")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, bad("url: not a URL (%s)", explainURLError(err))
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, bad("url: scheme must be http or https, got %q", u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, bad("url: no host in %s", redactURL(u))
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultWebhookTimeout
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	w := &Webhook{
		cfg:    cfg,
		secret: []byte(cfg.Secret),
		target: fmt.Sprintf("webhook:%s:%d", cfg.DoorID, cfg.Index),
		shown:  redactURL(u),
		db:     db,
		client: &http.Client{
			Transport: transport,
			// A POST redirected would be replayed as a GET: refuse, and
			// say where the receiver points.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		kick:       make(chan struct{}, 1),
		minBackoff: webhookMinBackoff,
		maxBackoff: webhookMaxBackoff,
	}
	w.log = log.With("door", cfg.DoorID, "output", cfg.Index, "url", w.shown)
	return w, nil
}

// redactURL shows scheme, host and path only: user info and the query may
// carry credentials (a token in the URL is a common webhook setup).
func redactURL(u *url.URL) string {
	shown := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	s := shown.String()
	if u.User != nil {
		s = strings.Replace(s, "://", "://***@", 1)
	}
	if u.RawQuery != "" {
		s += "?***"
	}
	return s
}

// explainURLError drops the URL from a *url.Error, which would otherwise
// repeat it unredacted.
func explainURLError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

// Kind implements Output.
func (w *Webhook) Kind() string { return "webhook" }

// Target is the deliveries queue's topic for this output.
func (w *Webhook) Target() string { return w.target }

// webhookBody is the JSON a receiver gets; see the contract above.
// decisionBody is a decision as webhooks and MQTT send it.
type decisionBody struct {
	EventID    uint64   `json:"event_id"`
	DoorID     string   `json:"door_id"`
	Decision   string   `json:"decision"`
	Opens      bool     `json:"opens"`
	PersonID   *string  `json:"person_id"` // null when no person matched
	Time       string   `json:"time"`
	Reason     string   `json:"reason,omitempty"`
	Confidence *float32 `json:"confidence,omitempty"` // absent on manual openings
	Liveness   *float32 `json:"liveness,omitempty"`
	CameraID   string   `json:"camera_id,omitempty"`
	TrackID    uint64   `json:"track_id,omitempty"`
	CardNumber string   `json:"card_number,omitempty"`
	KeyID      string   `json:"key_id,omitempty"`
}

// Messages implements Queued: the one delivery of f for this webhook.
func (w *Webhook) Messages(f Firing) ([]store.OutboxMessage, error) {
	switch {
	case f.EventID == 0:
		return nil, fmt.Errorf("webhook %s: decision has no event id (store its event first)", w.target)
	case f.DoorID != "" && f.DoorID != w.cfg.DoorID:
		return nil, fmt.Errorf("webhook %s: decision of another door", w.target)
	case f.Decision == "":
		return nil, fmt.Errorf("webhook %s: decision is empty", w.target)
	case f.Time.IsZero():
		return nil, fmt.Errorf("webhook %s: decision has no time", w.target)
	}
	f.DoorID = w.cfg.DoorID
	b, err := encodeDecision(f)
	if err != nil {
		return nil, fmt.Errorf("webhook %s: %w", w.target, err)
	}
	return []store.OutboxMessage{{Topic: w.target, Payload: b, Delivery: true}}, nil
}

// encodeDecision is the JSON body of a decision: the webhook contract's
// fields (event_id, door_id, decision, person_id, time) and the evidence.
func encodeDecision(f Firing) ([]byte, error) {
	body := decisionBody{
		EventID:    f.EventID,
		DoorID:     f.DoorID,
		Decision:   f.Decision,
		Opens:      f.Opens(),
		Time:       f.Time.UTC().Format(time.RFC3339Nano),
		Reason:     f.Reason,
		Liveness:   f.Liveness,
		CameraID:   f.CameraID,
		TrackID:    f.TrackID,
		CardNumber: f.CardNumber,
		KeyID:      f.KeyID,
	}
	if f.PersonID != "" {
		body.PersonID = &f.PersonID
	}
	if f.Decision != DecisionManual {
		body.Confidence = &f.Confidence
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode event %d: %w", f.EventID, err)
	}
	return b, nil
}

// Fire implements Output. The message is already queued (Messages, in the
// event's transaction); Fire only wakes the worker and never blocks.
func (w *Webhook) Fire(context.Context, Firing) error {
	select {
	case w.kick <- struct{}{}:
	default: // a wake-up is already pending
	}
	return nil
}

// Health implements Output: nil unless the last attempt failed.
func (w *Webhook) Health() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failures == 0 {
		return nil
	}
	attempts := "attempt"
	if w.failures > 1 {
		attempts = "attempts"
	}
	return fmt.Errorf("webhook %s: %d %s failing since %s: %s",
		w.shown, w.failures, attempts, w.failingSince.Format(time.RFC3339), w.lastErr)
}

// Stats reports the queue and the last attempts.
func (w *Webhook) Stats(ctx context.Context) (WebhookStats, error) {
	waiting, dropped, err := w.db.DeliveryStats(ctx, w.target)
	if err != nil {
		return WebhookStats{}, fmt.Errorf("webhook %s: %w", w.target, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return WebhookStats{
		Target:       w.target,
		Waiting:      waiting,
		Dropped:      dropped,
		Delivered:    w.delivered,
		Failures:     w.failures,
		FailingSince: w.failingSince,
		LastError:    w.lastErr,
		LastDelivery: w.lastDelivery,
		LastLatency:  w.lastLatency,
	}, nil
}

// Close implements Output. The worker stops with its context; Close only
// lets idle connections go, and may be called more than once.
func (w *Webhook) Close() error {
	w.client.CloseIdleConnections()
	return nil
}

// Run is the delivery worker: it sends this target's messages oldest
// first until ctx ends. The controller runs one per webhook.
func (w *Webhook) Run(ctx context.Context) {
	backoff := w.minBackoff
	for ctx.Err() == nil {
		// This peek sees whatever a pending Fire announced: drop the
		// wake-up, so that only a later Fire cuts the next wait short.
		select {
		case <-w.kick:
		default:
		}
		msgs, err := w.db.PeekDeliveries(ctx, w.target, webhookPeek)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			w.log.Warn("webhook: cannot read the deliveries queue; will retry", "error", err, "retry_in", backoff)
			w.wait(ctx, backoff)
			backoff = min(2*backoff, w.maxBackoff)
			continue
		}
		if len(msgs) == 0 {
			w.wait(ctx, webhookIdlePoll)
			continue
		}
		for _, m := range msgs {
			if err := w.deliver(ctx, m); err != nil {
				if ctx.Err() != nil {
					return
				}
				d := jitter(backoff)
				w.failed(err, d)
				// Head of line: wait, then peek again and retry the same
				// (oldest) message, unless the bound dropped it meanwhile.
				w.wait(ctx, d)
				backoff = min(2*backoff, w.maxBackoff)
				break
			}
			backoff = w.minBackoff
		}
	}
}

// wait sleeps d, or less when Fire wakes the worker or ctx ends.
func (w *Webhook) wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-w.kick:
	case <-ctx.Done():
	}
}

// jitter spreads retries by ±10%, so that the webhooks of several doors
// pointing at one receiver do not retry in step.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return d - d/10 + rand.N(d/5+1)
}

// deliver makes one attempt at m and acks it on a 2xx.
func (w *Webhook) deliver(ctx context.Context, m store.OutboxMessage) error {
	eventID, err := eventIDOf(m.Payload)
	if err != nil {
		// Cannot happen with bodies from Messages; sending it anyway is
		// better than blocking the queue behind it forever.
		eventID = ""
	}
	actx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, w.cfg.URL, bytes.NewReader(m.Payload))
	if err != nil {
		return fmt.Errorf("make the request: %s", explainURLError(err))
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "faced-webhook")
	req.Header.Set("X-Faced-Timestamp", ts)
	req.Header.Set("X-Faced-Signature", Sign(w.secret, ts, m.Payload))
	if eventID != "" {
		req.Header.Set("X-Faced-Event-Id", eventID)
	}
	resp, err := w.client.Do(req)
	if err != nil {
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("no answer within %s", w.cfg.Timeout)
		}
		return errors.New(explainURLError(err))
	}
	// Drain a little so the connection is reused; the body is not ours
	// to log.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		if loc := resp.Header.Get("Location"); resp.StatusCode >= 300 && resp.StatusCode < 400 && loc != "" {
			shown := "another URL"
			if u, err := url.Parse(loc); err == nil {
				shown = redactURL(u)
			}
			return fmt.Errorf("HTTP %s, redirected to %s (redirects are not followed; configure the final URL)", resp.Status, shown)
		}
		return fmt.Errorf("HTTP %s", resp.Status)
	}
	// The receiver has it: remove it even if ctx ends now, or it goes
	// again after the restart.
	actx, cancel = context.WithTimeout(context.WithoutCancel(ctx), w.cfg.Timeout)
	defer cancel()
	if err := w.db.AckDeliveries(actx, m.Seq); err != nil {
		// Delivered but still queued: it goes again, and the receiver
		// drops it by event_id. Not a receiver failure.
		w.log.Warn("webhook: delivered but cannot remove it from the queue; it will be sent again", "error", err)
	}
	w.succeeded(m)
	return nil
}

func eventIDOf(payload []byte) (string, error) {
	var b struct {
		EventID uint64 `json:"event_id"`
	}
	if err := json.Unmarshal(payload, &b); err != nil {
		return "", err
	}
	return strconv.FormatUint(b.EventID, 10), nil
}

func (w *Webhook) failed(err error, retryIn time.Duration) {
	w.mu.Lock()
	if w.failures == 0 {
		w.failingSince = time.Now()
	}
	w.failures++
	w.lastErr = err.Error()
	n := w.failures
	w.mu.Unlock()
	// No body, no person id, no secret: the error is the transport's or
	// the status line.
	w.log.Warn("webhook: delivery failed; will retry the same decision (later ones wait behind it)",
		"error", err, "failed_attempts", n, "retry_in", retryIn.Round(time.Millisecond))
}

func (w *Webhook) succeeded(m store.OutboxMessage) {
	now := time.Now()
	w.mu.Lock()
	n := w.failures
	w.failures, w.failingSince, w.lastErr = 0, time.Time{}, ""
	w.delivered++
	w.lastDelivery = now
	if !m.CreatedAt.IsZero() {
		w.lastLatency = now.Sub(m.CreatedAt)
	}
	w.mu.Unlock()
	if n > 0 {
		w.log.Info("webhook: delivering again", "failed_attempts", n)
	}
}

// Sign returns the X-Faced-Signature value of body sent at timestamp (the
// X-Faced-Timestamp value): "sha256=" and the lowercase hex HMAC-SHA256,
// keyed by secret, of "<timestamp>.<body>".
func Sign(secret []byte, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify is the receiver's check: signature must be Sign(secret,
// timestamp, body), compared in constant time, and timestamp (unix
// seconds) within maxSkew of now, which bounds replay; receivers also
// drop event_ids they have seen. It returns ErrBadSignature or
// ErrStaleTimestamp (wrapped) or nil.
func Verify(secret []byte, timestamp, signature string, body []byte, now time.Time, maxSkew time.Duration) error {
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q is not unix seconds", ErrStaleTimestamp, timestamp)
	}
	if skew := now.Sub(time.Unix(sec, 0)).Abs(); skew > maxSkew {
		return fmt.Errorf("%w: %s off, at most %s allowed", ErrStaleTimestamp, skew.Round(time.Second), maxSkew)
	}
	hexSig, ok := strings.CutPrefix(signature, "sha256=")
	if !ok {
		return fmt.Errorf("%w: no sha256= prefix", ErrBadSignature)
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return fmt.Errorf("%w: not hex", ErrBadSignature)
	}
	want, _ := hex.DecodeString(strings.TrimPrefix(Sign(secret, timestamp, body), "sha256="))
	if !hmac.Equal(got, want) {
		return ErrBadSignature
	}
	return nil
}
