// Package camera watches video sources on the device: it reads frames
// (latest-frame semantics, rate-capped), detects and tracks faces, scores
// the best shots of each track, and records one decision per tracked face
// as an event through the service, so that it reaches MQTT through the
// outbox like every other event.
//
// Each camera runs two goroutines: capture, which reads frames as fast as
// the source delivers them and keeps only the newest (so a slow pipeline
// drops frames instead of falling behind), and process, which takes that
// newest frame at most FPS times a second.
package camera

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/models"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// Config is one camera.
type Config struct {
	ID  string
	URL string
	// FPS caps how many frames a second are processed (default 10).
	FPS float64
	// ROI keeps faces whose centre lies inside it; nil is the whole frame.
	ROI *ROI
	// MinFacePx ignores smaller faces (default DefaultMinFacePx).
	MinFacePx int
	// Galleries to search; empty searches all.
	Galleries []string
	// Threshold a shot's best candidate must reach to count as a match.
	Threshold service.Threshold
	// RequireLiveness refuses matches whose shots look like a spoof.
	RequireLiveness bool
	// KeepCrops stores the best shot's aligned crop with the event.
	KeepCrops bool
	// RepeatAfter is how long a decided face seen again on this camera
	// (a new track of the same person, or of the same unknown face) is
	// not decided again: one passage, one event, even when the stream
	// drops and the face is picked up anew. Default 30 s.
	RepeatAfter time.Duration
	// Limits bound every frame (face.Limits defaults when zero).
	Limits face.Limits
	// Loop replays a file clip from its start when it ends, instead of
	// ending the camera (benchmarks, demos).
	Loop bool
}

// ROI is a region of the frame as fractions of its width and height.
type ROI struct{ X, Y, W, H float64 }

// Defaults of Config.
const (
	DefaultFPS         = 10
	DefaultMinFacePx   = 40
	DefaultRepeatAfter = 30 * time.Second
)

// SettingError is an invalid camera setting, named as in the
// configuration file.
type SettingError struct {
	Setting string // e.g. "fps"
	Msg     string
}

func (e *SettingError) Error() string { return e.Setting + ": " + e.Msg }

// Check reports the first invalid setting, as a *SettingError.
func (c Config) Check() error {
	bad := func(setting, format string, args ...any) error {
		return &SettingError{Setting: setting, Msg: fmt.Sprintf(format, args...)}
	}
	if c.ID == "" {
		return bad("id", "required")
	}
	if _, _, err := parseURL(c.URL); err != nil {
		return bad("url", "%v", strings.TrimPrefix(err.Error(), "camera: "))
	}
	if math.IsNaN(c.FPS) || c.FPS < 0 || c.FPS > 60 {
		return bad("fps", "%v: want 0 < fps <= 60", c.FPS)
	}
	if c.MinFacePx < 0 {
		return bad("min_face_px", "%d is negative", c.MinFacePx)
	}
	if r := c.ROI; r != nil {
		ok := r.X >= 0 && r.Y >= 0 && r.W > 0 && r.H > 0 && r.X+r.W <= 1.0000001 && r.Y+r.H <= 1.0000001
		if !ok {
			return bad("roi", "%+v: want fractions of the frame, w and h positive, x+w and y+h at most 1", *r)
		}
	}
	if c.RepeatAfter < 0 {
		return bad("repeat_after", "%v is negative", c.RepeatAfter)
	}
	return nil
}

func (c *Config) setDefaults() {
	if c.FPS == 0 {
		c.FPS = DefaultFPS
	}
	if c.MinFacePx == 0 {
		c.MinFacePx = DefaultMinFacePx
	}
	if c.RepeatAfter == 0 {
		c.RepeatAfter = DefaultRepeatAfter
	}
	if c.Threshold == (service.Threshold{}) {
		c.Threshold = service.DefaultThreshold
	}
}

// Recognizer is what a camera needs of the service.
type Recognizer interface {
	Pipeline() *face.Pipeline
	BestMatch(ctx context.Context, embedding []float32, galleries []string) (service.Match, bool, error)
	Confidence(cos float32) float32
	RecordEvent(ctx context.Context, e store.Event, snapshot []byte) (store.Event, error)
}

// Camera watches one source.
type Camera struct {
	cfg    Config
	rec    Recognizer
	log    *slog.Logger
	policy Policy
	client *http.Client
	// decided observes each recorded decision (metrics, doors); may be
	// nil.
	decided func(ctx context.Context, d Decision)
	// stateChanged observes state changes; may be nil.
	stateChanged func(id, state, errText string)

	tracker *Tracker
	recent  []recentDecision

	mu       sync.Mutex
	latest   *frame        // newest captured frame not yet processed
	arrived  chan struct{} // signalled (cap 1) when latest is replaced
	ended    chan struct{} // closed when a clip has played out
	shown    *frame        // last processed frame, for frame.jpg and mjpeg
	overlays []overlay
	shownSig chan struct{} // closed and replaced at each processed frame
	st       counters
}

type frame struct {
	img *face.Image
	t   time.Time // when it was read from the source
}

func (f *frame) close() {
	if f != nil {
		f.img.Close()
	}
}

// New returns a camera; Run starts it.
func New(cfg Config, rec Recognizer, log *slog.Logger) (*Camera, error) {
	if err := cfg.Check(); err != nil {
		return nil, fmt.Errorf("camera %q: %w", cfg.ID, err)
	}
	cfg.setDefaults()
	p := DefaultPolicy
	p.RequireLiveness = cfg.RequireLiveness
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Camera{
		cfg: cfg, rec: rec, policy: p,
		log:      log.With("camera", cfg.ID),
		tracker:  NewTracker(uint64(time.Now().UnixMilli()) * 1000),
		arrived:  make(chan struct{}, 1),
		ended:    make(chan struct{}),
		shownSig: make(chan struct{}),
		st:       counters{state: StateStarting},
	}, nil
}

// ID is the camera's id.
func (c *Camera) ID() string { return c.cfg.ID }

// Run watches the camera until ctx ends or a clip has played out, then
// decides the tracks still open. It returns nil in both cases.
func (c *Camera) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.capture(ctx)
	}()
	c.process(ctx)
	cancel()
	wg.Wait()
	c.mu.Lock()
	c.latest.close()
	c.latest = nil
	if c.st.state != StateEnded {
		c.st.state = StateStopped
	}
	c.mu.Unlock()
	return nil
}

// Reconnect backoff: doubling from 1 s, capped at 30 s.
const (
	minBackoff = time.Second
	maxBackoff = 30 * time.Second
)

func (c *Camera) capture(ctx context.Context) {
	backoff := minBackoff
	for ctx.Err() == nil {
		src, err := Open(ctx, c.cfg.URL, c.cfg.Limits, c.client)
		if err == nil {
			c.setState(StateRunning, nil)
			err = c.read(ctx, src)
			src.Close()
			backoff = minBackoff
		}
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, ErrEnded) && c.cfg.Loop {
			continue
		}
		if errors.Is(err, ErrEnded) {
			c.setState(StateEnded, nil)
			close(c.ended)
			return
		}
		c.log.Warn("camera stopped; reconnecting", "err", err, "in", backoff)
		c.setState(StateReconnecting, err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		c.mu.Lock()
		c.st.reconnects++
		c.mu.Unlock()
		backoff = min(2*backoff, maxBackoff)
	}
}

// read hands the source's frames to process until it fails.
func (c *Camera) read(ctx context.Context, src Source) error {
	for {
		img, err := src.Read(ctx)
		if err != nil {
			return err
		}
		now := time.Now()
		c.mu.Lock()
		if c.latest != nil {
			c.st.drops++
			c.latest.close()
		}
		c.latest = &frame{img: img, t: now}
		c.st.input.add(now)
		c.st.frames++
		c.st.lastFrame = now
		c.mu.Unlock()
		select {
		case c.arrived <- struct{}{}:
		default:
		}
	}
}

// idleTick is how often tracks are expired when no frame arrives.
const idleTick = 250 * time.Millisecond

func (c *Camera) process(ctx context.Context) {
	interval := time.Duration(float64(time.Second) / c.cfg.FPS)
	tick := time.NewTicker(idleTick)
	defer tick.Stop()
	var next time.Time
	ended := c.ended
	for {
		select {
		case <-ctx.Done():
			c.finish(context.WithoutCancel(ctx))
			return
		case <-ended:
			// Process the last frame, if still waiting, then stop.
			ended = nil
			if f := c.take(); f != nil {
				c.handle(ctx, f)
			}
			c.finish(ctx)
			return
		case <-tick.C:
			c.expire(ctx, time.Now())
			continue
		case <-c.arrived:
		}
		if d := time.Until(next); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				continue
			case <-t.C:
			}
		}
		f := c.take()
		if f == nil {
			continue
		}
		next = time.Now().Add(interval)
		c.handle(ctx, f)
	}
}

func (c *Camera) take() *frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.latest
	c.latest = nil
	return f
}

// handle detects, tracks, scores and decides on one frame, then keeps it
// as the shown frame.
func (c *Camera) handle(ctx context.Context, f *frame) {
	p := c.rec.Pipeline()
	faces, err := p.DetectImage(ctx, f.img, face.Options{MinFaceSize: c.cfg.MinFacePx})
	if err != nil {
		c.log.Warn("detect failed", "err", err)
		faces = nil
	}
	faces = c.inROI(faces, f.img.Width, f.img.Height)
	tracks := c.tracker.Update(faces, f.t)
	for i, tk := range tracks {
		if tk.Decided || len(tk.Shots) >= c.policy.MaxShots {
			continue
		}
		shot, err := c.shoot(ctx, f, faces[i])
		if err != nil {
			c.log.Warn("scoring a shot failed", "err", err)
			continue
		}
		tk.Shots = append(tk.Shots, shot)
		if d, ok := c.policy.Decide(tk, time.Now(), false); ok {
			c.record(ctx, tk, d)
		}
	}
	c.expire(ctx, f.t)

	ov := make([]overlay, len(faces))
	for i, fc := range faces {
		ov[i] = overlay{box: fc.Box, label: tracks[i].Label}
	}
	c.mu.Lock()
	c.shown.close()
	c.shown, c.overlays = f, ov
	c.st.processed.add(time.Now())
	c.st.processedN++
	c.st.active = c.tracker.Active()
	close(c.shownSig)
	c.shownSig = make(chan struct{})
	c.mu.Unlock()
}

// shoot embeds and scores one sighting.
func (c *Camera) shoot(ctx context.Context, f *frame, fc face.Face) (Shot, error) {
	p := c.rec.Pipeline()
	opts := face.Options{Embed: true, Liveness: c.cfg.RequireLiveness, KeepAligned: c.cfg.KeepCrops}
	g, err := p.Analyse(ctx, f.img, fc, opts)
	if err != nil {
		return Shot{}, err
	}
	s := Shot{Time: f.t, Quality: g.Quality.Score, Liveness: g.Liveness, Crop: g.Aligned, Box: g.Box, embedding: g.Embedding}
	m, ok, err := c.rec.BestMatch(ctx, g.Embedding, c.cfg.Galleries)
	if err != nil {
		return Shot{}, err
	}
	if ok {
		s.Best = Candidate{
			PersonID: m.Person.ID, Name: m.Person.Name, FaceID: m.FaceID, Confidence: m.Confidence,
			Matched: c.cfg.Threshold.Accepts(m.Confidence),
		}
		if len(m.Galleries) > 0 {
			s.Best.Gallery = m.Galleries[0]
		}
	}
	return s, nil
}

func (c *Camera) inROI(faces []face.Face, w, h int) []face.Face {
	r := c.cfg.ROI
	if r == nil {
		return faces
	}
	kept := faces[:0]
	for _, f := range faces {
		cx, cy := center(f.Box)
		fx, fy := float64(cx)/float64(w), float64(cy)/float64(h)
		if fx >= r.X && fx <= r.X+r.W && fy >= r.Y && fy <= r.Y+r.H {
			kept = append(kept, f)
		}
	}
	return kept
}

// expire decides the tracks that ended before t.
func (c *Camera) expire(ctx context.Context, t time.Time) {
	for _, tk := range c.tracker.Expire(t) {
		if d, ok := c.policy.Decide(tk, time.Now(), true); ok {
			c.record(ctx, tk, d)
		}
	}
}

// finish decides every open track (the camera stops).
func (c *Camera) finish(ctx context.Context) {
	for _, tk := range c.tracker.Flush() {
		if d, ok := c.policy.Decide(tk, time.Now(), true); ok {
			c.record(ctx, tk, d)
		}
	}
}

// recentDecision remembers a decided face for RepeatAfter.
type recentDecision struct {
	at        time.Time
	personID  string // empty for an unknown face
	embedding []float32
}

// repeated reports whether d is a face this camera decided within
// RepeatAfter: the same matched person, or an embedding at the strict
// preset's confidence or above to a recent one's (an unknown face seen
// again). It also forgets what is older.
func (c *Camera) repeated(d Decision, emb []float32) bool {
	kept := c.recent[:0]
	hit := false
	for _, r := range c.recent {
		if d.Time.Sub(r.at) > c.cfg.RepeatAfter {
			continue
		}
		kept = append(kept, r)
		switch {
		case d.Matched && r.personID == d.Person.PersonID:
			hit = true
		case !d.Matched && r.personID == "" && emb != nil && c.rec.Confidence(dot(emb, r.embedding)) >= service.Presets["strict"]:
			hit = true
		}
	}
	c.recent = kept
	return hit
}

// record turns a decision into an event (unless it repeats a recent one).
func (c *Camera) record(ctx context.Context, tk *Track, d Decision) {
	tk.Decided = true
	tk.Label = labelOf(d)
	emb := meanEmbedding(tk.Shots)
	if c.repeated(d, emb) {
		c.mu.Lock()
		c.st.repeats++
		c.mu.Unlock()
		return
	}
	id := ""
	if d.Matched {
		id = d.Person.PersonID
	}
	c.recent = append(c.recent, recentDecision{at: d.Time, personID: id, embedding: emb})

	e := store.Event{
		CameraID: c.cfg.ID, Time: d.Time, Matched: d.Matched, Confidence: d.Person.Confidence,
		Box:   [4]float32{d.Best.Box.X1, d.Best.Box.Y1, d.Best.Box.X2, d.Best.Box.Y2},
		Track: &store.TrackDecision{TrackID: d.TrackID, Latency: d.Latency, Liveness: d.Liveness, Live: d.Live},
		Meta:  store.Metadata{"decision": decisionKind(d)},
	}
	// Unmatched (unknown, spoof), the person is the best candidate, kept
	// as evidence for tuning thresholds: the store lists it as such
	// (candidate_person_id), never as a match.
	e.PersonID, e.FaceID, e.Gallery = d.Person.PersonID, d.Person.FaceID, d.Person.Gallery
	var crop []byte
	if c.cfg.KeepCrops {
		crop = d.Best.Crop
	}
	if _, err := c.rec.RecordEvent(ctx, e, crop); err != nil {
		c.log.Error("recording a decision failed", "err", err)
		return
	}
	c.mu.Lock()
	c.st.decisions++
	c.mu.Unlock()
	if c.decided != nil {
		c.decided(ctx, d)
	}
}

func decisionKind(d Decision) string {
	switch {
	case d.Spoof:
		return "spoof"
	case d.Matched:
		return "person"
	}
	return "unknown"
}

func labelOf(d Decision) string {
	switch {
	case d.Spoof:
		return "spoof"
	case d.Matched && d.Person.Name != "":
		return d.Person.Name
	case d.Matched:
		return d.Person.PersonID
	}
	return "unknown"
}

// meanEmbedding is the normalised mean of the shots' embeddings (nil
// when none was embedded).
func meanEmbedding(shots []Shot) []float32 {
	var sum []float32
	for _, s := range shots {
		if sum == nil {
			sum = make([]float32, len(s.embedding))
		}
		for i, v := range s.embedding {
			sum[i] += v
		}
	}
	return models.L2Normalize(sum)
}

func dot(a, b []float32) float32 {
	if len(a) != len(b) {
		return -1
	}
	var s float32
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}
