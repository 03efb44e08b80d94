package door

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// Config is one door.
type Config struct {
	ID string
	// Cameras whose decisions this door acts on.
	Cameras []string
	Rules   Rules
	// Threshold a match must reach at this door (stricter than the
	// camera's, or the API default).
	Threshold service.Threshold
	// Cooldown: a person granted again within it does not open the door
	// again (one passage, one opening); the decision is still recorded.
	Cooldown time.Duration
}

// DefaultCooldown is Config.Cooldown's default.
const DefaultCooldown = 5 * time.Second

// Service is what doors need of the service; *service.Service is one.
type Service interface {
	GetPerson(ctx context.Context, id string) (store.Person, error)
	GetFace(ctx context.Context, id uint64) (store.Face, error)
	Identify(ctx context.Context, req service.IdentifyRequest) ([]service.IdentifiedFace, error)
	RecordEventWith(ctx context.Context, e store.Event, snapshot []byte, more store.EventQueue) (store.Event, error)
}

// Door is a configured door with its outputs.
type Door struct {
	cfg     Config
	outputs []Output

	mu         sync.Mutex
	lastOpened map[string]time.Time // person id → last opening
	decisions  map[string]uint64
}

// NewDoor makes a door driving outputs.
func NewDoor(cfg Config, outputs []Output) *Door {
	if cfg.Cooldown == 0 {
		cfg.Cooldown = DefaultCooldown
	}
	if cfg.Threshold == (service.Threshold{}) {
		cfg.Threshold = service.DefaultThreshold
	}
	return &Door{cfg: cfg, outputs: outputs, lastOpened: map[string]time.Time{}, decisions: map[string]uint64{}}
}

// ID is the door's id.
func (d *Door) ID() string { return d.cfg.ID }

// Controller decides for every door and records and fires each decision.
type Controller struct {
	svc   Service
	log   *slog.Logger
	now   func() time.Time
	doors []*Door
	byID  map[string]*Door
}

// NewController returns a controller for doors.
func NewController(svc Service, doors []*Door, log *slog.Logger) (*Controller, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Controller{svc: svc, log: log, now: time.Now, doors: doors, byID: map[string]*Door{}}
	for _, d := range doors {
		if _, dup := c.byID[d.cfg.ID]; dup {
			return nil, fmt.Errorf("door %q: id used twice", d.cfg.ID)
		}
		c.byID[d.cfg.ID] = d
	}
	return c, nil
}

// Door finds a door by id.
func (c *Controller) Door(id string) (*Door, bool) {
	d, ok := c.byID[id]
	return d, ok
}

// Doors lists the doors in configuration order.
func (c *Controller) Doors() []*Door { return c.doors }

// Result is a decision as recorded.
type Result struct {
	Verdict
	DoorID     string
	EventID    uint64
	PersonID   string // the matched person, or "" (Candidate then)
	Candidate  string
	Confidence float32
	Liveness   *float32
	Live       bool
	// Cooldown: granted within the person's cooldown; outputs not fired.
	Cooldown bool
	Time     time.Time
}

// ErrNoDoor is returned for an unknown door id.
var ErrNoDoor = errors.New("door: no such door")

// ErrNoFace is returned by DecidePhoto when the photo shows no face.
var ErrNoFace = errors.New("door: no face in the photo")

// CameraDecision is a camera's decision on a tracked face, as doors see it.
type CameraDecision struct {
	CameraID   string
	TrackID    uint64
	Matched    bool
	PersonID   string // the person, or the best candidate
	FaceID     uint64
	Confidence float32
	Liveness   *float32
	Live       bool
	Box        [4]float32
}

// FromCamera decides at every door watching the camera.
func (c *Controller) FromCamera(ctx context.Context, cd CameraDecision) {
	for _, d := range c.doors {
		for _, cam := range d.cfg.Cameras {
			if cam != cd.CameraID {
				continue
			}
			ev := c.evidence(ctx, d, cd.Matched, cd.PersonID, cd.FaceID, cd.Confidence, cd.Liveness, cd.Live)
			e := store.Event{CameraID: cd.CameraID, Box: cd.Box}
			if _, err := c.decide(ctx, d, ev, e, Firing{CameraID: cd.CameraID, TrackID: cd.TrackID}); err != nil {
				c.log.Error("door decision not recorded", "door", d.cfg.ID, "err", err)
			}
		}
	}
}

// DecidePhoto decides at a door on the biggest face of a photo: what a
// door controller that takes its own snapshot asks (POST
// /v1/doors/{id}/decide).
func (c *Controller) DecidePhoto(ctx context.Context, doorID string, photo []byte) (Result, error) {
	d, ok := c.byID[doorID]
	if !ok {
		return Result{}, ErrNoDoor
	}
	mode := service.LivenessReport
	faces, err := c.svc.Identify(ctx, service.IdentifyRequest{
		Photo: photo, N: 1, Threshold: d.cfg.Threshold, Selector: face.SelectBiggest, Liveness: mode,
	})
	if err != nil {
		return Result{}, err
	}
	if len(faces) == 0 {
		return Result{}, ErrNoFace
	}
	f := faces[0]
	var (
		matched bool
		id      string
		faceID  uint64
		conf    float32
	)
	if f.Best != nil {
		id, faceID, conf = f.Best.Person.ID, f.Best.FaceID, f.Best.Confidence
		matched = d.cfg.Threshold.Accepts(conf)
	}
	ev := c.evidence(ctx, d, matched, id, faceID, conf, f.Face.Liveness, f.Live())
	b := f.Face.Box
	return c.decide(ctx, d, ev, store.Event{Box: [4]float32{b.X1, b.Y1, b.X2, b.Y2}}, Firing{})
}

// Open records a manual opening by an admin key and fires the outputs.
func (c *Controller) Open(ctx context.Context, doorID, keyID string) (Result, error) {
	d, ok := c.byID[doorID]
	if !ok {
		return Result{}, ErrNoDoor
	}
	v := Verdict{Decision: DecisionManual, Reason: "opened by hand through the API"}
	return c.record(ctx, d, v, Evidence{Live: true}, store.Event{}, Firing{KeyID: keyID}, false)
}

// evidence looks up the person of a match (their access fields and the
// matched face's galleries). A person deleted since is unknown.
func (c *Controller) evidence(ctx context.Context, d *Door, matched bool, personID string, faceID uint64,
	conf float32, liveness *float32, live bool) Evidence {
	ev := Evidence{Confidence: conf, Liveness: liveness, Live: live}
	if !matched || !d.cfg.Threshold.Accepts(conf) || personID == "" {
		ev.Candidate = personID
		return ev
	}
	p, err := c.svc.GetPerson(ctx, personID)
	if err != nil {
		ev.Candidate = personID
		return ev
	}
	person := &Person{ID: p.ID, Enabled: !p.Disabled, ValidFrom: p.ValidFrom, ValidUntil: p.ValidUntil, CardNumber: p.CardNumber}
	if f, err := c.svc.GetFace(ctx, faceID); err == nil {
		person.Galleries = f.Galleries
	}
	ev.Person = person
	return ev
}

// decide applies the door's rules and the person's cooldown, then records.
func (c *Controller) decide(ctx context.Context, d *Door, ev Evidence, e store.Event, f Firing) (Result, error) {
	now := c.now()
	v := d.cfg.Rules.Check(ev, now)
	cooldown := false
	if v.Decision == Granted {
		d.mu.Lock()
		if last, ok := d.lastOpened[ev.Person.ID]; ok && now.Sub(last) < d.cfg.Cooldown {
			cooldown = true
		} else {
			d.lastOpened[ev.Person.ID] = now
		}
		d.mu.Unlock()
	}
	return c.record(ctx, d, v, ev, e, f, cooldown)
}

// record stores the decision's event with the queued outputs' messages in
// one transaction, then fires the outputs (not within a cooldown).
func (c *Controller) record(ctx context.Context, d *Door, v Verdict, ev Evidence, e store.Event, f Firing, cooldown bool) (Result, error) {
	now := c.now()
	e.Time = now
	e.Confidence = ev.Confidence
	if ev.Person != nil {
		e.Matched, e.PersonID = true, ev.Person.ID
	} else {
		e.PersonID = ev.Candidate // kept as the candidate (unmatched)
	}
	reason := v.Reason
	if cooldown {
		reason += "; within the person's cooldown, outputs not fired again"
	}
	e.Door = &store.DoorDecision{DoorID: d.cfg.ID, Decision: v.Decision, Reason: reason, KeyID: f.KeyID}
	f.DoorID, f.Decision, f.Reason, f.Confidence, f.Liveness, f.Time = d.cfg.ID, v.Decision, reason, ev.Confidence, ev.Liveness, now
	if ev.Person != nil {
		f.PersonID, f.CardNumber = ev.Person.ID, ev.Person.CardNumber
	}
	queued := func(stored store.Event) ([]store.OutboxMessage, error) {
		if cooldown {
			return nil, nil
		}
		fired := f
		fired.EventID = stored.ID
		var out []store.OutboxMessage
		for _, o := range d.outputs {
			q, ok := o.(Queued)
			if !ok {
				continue
			}
			msgs, err := q.Messages(fired)
			if err != nil {
				return nil, fmt.Errorf("%s output: %w", o.Kind(), err)
			}
			out = append(out, msgs...)
		}
		return out, nil
	}
	stored, err := c.svc.RecordEventWith(ctx, e, nil, queued)
	if err != nil {
		return Result{}, fmt.Errorf("door %s: record decision: %w", d.cfg.ID, err)
	}
	f.EventID = stored.ID
	d.mu.Lock()
	d.decisions[v.Decision]++
	d.mu.Unlock()
	if !cooldown {
		for _, o := range d.outputs {
			// Each output returns at once (slow work runs in the
			// background): one failing never holds up the others.
			if err := o.Fire(context.WithoutCancel(ctx), f); err != nil {
				c.log.Warn("door output failed", "door", d.cfg.ID, "output", o.Kind(), "err", err)
			}
		}
	}
	r := Result{Verdict: Verdict{Decision: v.Decision, Reason: reason}, DoorID: d.cfg.ID, EventID: stored.ID,
		Confidence: ev.Confidence, Liveness: ev.Liveness, Live: ev.Live, Cooldown: cooldown, Time: now}
	if ev.Person != nil {
		r.PersonID = ev.Person.ID
	} else {
		r.Candidate = ev.Candidate
	}
	return r, nil
}

// OutputStatus is one output's health.
type OutputStatus struct {
	Kind  string `json:"type"`
	Error string `json:"error,omitempty"`
}

// Status is a door's state for the API and metrics.
type Status struct {
	ID        string            `json:"id"`
	Cameras   []string          `json:"cameras"`
	Galleries []string          `json:"galleries"`
	Healthy   bool              `json:"healthy"`
	Outputs   []OutputStatus    `json:"outputs"`
	Decisions map[string]uint64 `json:"decisions"`
	Scheduled bool              `json:"scheduled"` // has a schedule
	OpenNow   bool              `json:"open_now"`  // the schedule admits now
}

// Status reports the door's health and counts.
func (d *Door) Status(now time.Time) Status {
	s := Status{ID: d.cfg.ID, Cameras: nonNil(d.cfg.Cameras), Galleries: nonNil(d.cfg.Rules.Galleries), Healthy: true,
		Scheduled: d.cfg.Rules.Schedule != nil, OpenNow: d.cfg.Rules.Schedule.Open(now), Decisions: map[string]uint64{}}
	for _, o := range d.outputs {
		os := OutputStatus{Kind: o.Kind()}
		if err := o.Health(); err != nil {
			os.Error, s.Healthy = err.Error(), false
		}
		s.Outputs = append(s.Outputs, os)
	}
	d.mu.Lock()
	for k, v := range d.decisions {
		s.Decisions[k] = v
	}
	d.mu.Unlock()
	return s
}

// Close closes every door's outputs.
func (c *Controller) Close() error {
	var errs []error
	for _, d := range c.doors {
		for _, o := range d.outputs {
			errs = append(errs, o.Close())
		}
	}
	return errors.Join(errs...)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

var (
	descHealthy = prometheus.NewDesc("faced_door_healthy",
		"1 while every output of the door can be driven, else 0.", []string{"door"}, nil)
	descDecisions = prometheus.NewDesc("faced_door_decisions_total",
		"Decisions recorded at the door, by decision (granted, denied_..., manual_open).", []string{"door", "decision"}, nil)
)

// Describe implements prometheus.Collector.
func (c *Controller) Describe(ch chan<- *prometheus.Desc) {
	ch <- descHealthy
	ch <- descDecisions
}

// Collect implements prometheus.Collector.
func (c *Controller) Collect(ch chan<- prometheus.Metric) {
	now := c.now()
	for _, d := range c.doors {
		s := d.Status(now)
		healthy := 0.0
		if s.Healthy {
			healthy = 1
		}
		ch <- prometheus.MustNewConstMetric(descHealthy, prometheus.GaugeValue, healthy, s.ID)
		for decision, n := range s.Decisions {
			ch <- prometheus.MustNewConstMetric(descDecisions, prometheus.CounterValue, float64(n), s.ID, decision)
		}
	}
}
