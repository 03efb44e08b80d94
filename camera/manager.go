package camera

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/facedhq/faced/models"
)

// Manager runs the configured cameras and reports on them.
type Manager struct {
	cams    []*Camera
	byID    map[string]*Camera
	latency *prometheus.HistogramVec
	// onDecision is told every recorded decision (doors act on them).
	onDecision func(ctx context.Context, cameraID string, d Decision)
}

// OnDecision makes fn hear every decision the cameras record, after its
// event is stored (a door acts on it). Call it before Run.
func (m *Manager) OnDecision(fn func(ctx context.Context, cameraID string, d Decision)) {
	m.onDecision = fn
}

// NewManager checks and prepares the cameras; Run starts them. onState,
// when not nil, is told every change of a camera's state (running,
// reconnecting with the error, ended, stopped): the daemon turns it into
// an MQTT message, so a camera that stops is an event for the fleet.
func NewManager(cfgs []Config, rec Recognizer, log *slog.Logger, onState func(id, state, errText string)) (*Manager, error) {
	m := &Manager{
		byID: map[string]*Camera{},
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "faced_camera_decision_latency_seconds",
			Help:    "Time from the first frame in which a tracked face was at least 80 px to its decision, by camera.",
			Buckets: []float64{.05, .1, .15, .2, .3, .4, .6, .8, 1, 1.5, 2, 3, 5, 10},
		}, []string{"camera"}),
	}
	for _, cfg := range cfgs {
		if _, dup := m.byID[cfg.ID]; dup {
			return nil, fmt.Errorf("camera %q: id used twice", cfg.ID)
		}
		if cfg.RequireLiveness && !rec.Pipeline().Has(models.TaskLiveness) {
			return nil, fmt.Errorf("camera %q: require_liveness needs a liveness model (vision.liveness)", cfg.ID)
		}
		c, err := New(cfg, rec, log)
		if err != nil {
			return nil, err
		}
		obs, id := m.latency.WithLabelValues(cfg.ID), cfg.ID
		c.decided = func(ctx context.Context, d Decision) {
			obs.Observe(d.Latency.Seconds())
			if m.onDecision != nil {
				m.onDecision(ctx, id, d)
			}
		}
		c.stateChanged = onState
		m.cams = append(m.cams, c)
		m.byID[cfg.ID] = c
	}
	return m, nil
}

// Run runs every camera until ctx ends (clips that end stop on their own).
func (m *Manager) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, c := range m.cams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Run(ctx)
		}()
	}
	wg.Wait()
}

// Cameras lists the cameras in configuration order.
func (m *Manager) Cameras() []*Camera { return m.cams }

// Camera finds a camera by id.
func (m *Manager) Camera(id string) (*Camera, bool) {
	c, ok := m.byID[id]
	return c, ok
}

// Status lists every camera's status.
func (m *Manager) Status() []Status {
	out := make([]Status, len(m.cams))
	for i, c := range m.cams {
		out[i] = c.Status()
	}
	return out
}

var (
	descUp = prometheus.NewDesc("faced_camera_up",
		"1 while the camera delivers frames, 0 while it reconnects, has ended or stopped.", []string{"camera"}, nil)
	descInputFPS = prometheus.NewDesc("faced_camera_input_fps",
		"Frames per second read from the camera (last few seconds).", []string{"camera"}, nil)
	descProcessedFPS = prometheus.NewDesc("faced_camera_processed_fps",
		"Frames per second processed (last few seconds).", []string{"camera"}, nil)
	descFrames = prometheus.NewDesc("faced_camera_frames_total",
		"Frames read from the camera.", []string{"camera"}, nil)
	descDrops = prometheus.NewDesc("faced_camera_dropped_frames_total",
		"Frames replaced by a newer one before they were processed.", []string{"camera"}, nil)
	descReconnects = prometheus.NewDesc("faced_camera_reconnects_total",
		"Times the camera's source was reopened after failing.", []string{"camera"}, nil)
	descTracks = prometheus.NewDesc("faced_camera_active_tracks",
		"Faces being tracked.", []string{"camera"}, nil)
	descDecisions = prometheus.NewDesc("faced_camera_decisions_total",
		"Decisions recorded as events.", []string{"camera"}, nil)
	descAge = prometheus.NewDesc("faced_camera_last_frame_age_seconds",
		"Seconds since the last frame (absent before the first).", []string{"camera"}, nil)
)

// Describe implements prometheus.Collector.
func (m *Manager) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descInputFPS, descProcessedFPS, descFrames, descDrops, descReconnects, descTracks, descDecisions, descAge} {
		ch <- d
	}
	m.latency.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Manager) Collect(ch chan<- prometheus.Metric) {
	for _, s := range m.Status() {
		up := 0.0
		if s.State == StateRunning {
			up = 1
		}
		g := func(d *prometheus.Desc, t prometheus.ValueType, v float64) {
			ch <- prometheus.MustNewConstMetric(d, t, v, s.ID)
		}
		g(descUp, prometheus.GaugeValue, up)
		g(descInputFPS, prometheus.GaugeValue, s.InputFPS)
		g(descProcessedFPS, prometheus.GaugeValue, s.ProcessedFPS)
		g(descFrames, prometheus.CounterValue, float64(s.Frames))
		g(descDrops, prometheus.CounterValue, float64(s.Drops))
		g(descReconnects, prometheus.CounterValue, float64(s.Reconnects))
		g(descTracks, prometheus.GaugeValue, float64(s.ActiveTracks))
		g(descDecisions, prometheus.CounterValue, float64(s.Decisions))
		if s.LastFrameAgeMS != nil {
			g(descAge, prometheus.GaugeValue, float64(*s.LastFrameAgeMS)/1000)
		}
	}
	m.latency.Collect(ch)
}
