package camera

import (
	"time"
)

// States of a camera.
const (
	StateStarting     = "starting"
	StateRunning      = "running"
	StateReconnecting = "reconnecting" // the source failed; retrying with backoff
	StateEnded        = "ended"        // a file clip played out
	StateStopped      = "stopped"      // the daemon is stopping
)

// counters are a camera's figures, under Camera.mu.
type counters struct {
	state      string
	err        string
	input      rate
	processed  rate
	frames     uint64
	processedN uint64
	drops      uint64
	reconnects uint64
	decisions  uint64
	repeats    uint64
	active     int
	lastFrame  time.Time
}

// Status is a camera's state for the API and metrics.
type Status struct {
	ID    string `json:"id"`
	URL   string `json:"url"` // password redacted
	State string `json:"state"`
	// Error is why the source last failed, while reconnecting.
	Error string `json:"error,omitempty"`
	// InputFPS and ProcessedFPS are rates over the last few seconds.
	InputFPS     float64 `json:"input_fps"`
	ProcessedFPS float64 `json:"processed_fps"`
	Frames       uint64  `json:"frames"`
	Processed    uint64  `json:"processed"`
	// Drops counts frames replaced by a newer one before processing.
	Drops      uint64 `json:"drops"`
	Reconnects uint64 `json:"reconnects"`
	// LastFrameAgeMS is null before the first frame.
	LastFrameAgeMS *int64 `json:"last_frame_age_ms"`
	ActiveTracks   int    `json:"active_tracks"`
	Decisions      uint64 `json:"decisions"`
	// Repeats counts decisions not recorded because the same face was
	// decided within repeat_after.
	Repeats uint64 `json:"repeats"`
}

// Status reports the camera's figures.
func (c *Camera) Status() Status {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	s := Status{
		ID: c.cfg.ID, URL: Redact(c.cfg.URL), State: c.st.state, Error: c.st.err,
		InputFPS: c.st.input.perSecond(now), ProcessedFPS: c.st.processed.perSecond(now),
		Frames: c.st.frames, Processed: c.st.processedN, Drops: c.st.drops, Reconnects: c.st.reconnects,
		ActiveTracks: c.st.active, Decisions: c.st.decisions, Repeats: c.st.repeats,
	}
	if !c.st.lastFrame.IsZero() {
		age := now.Sub(c.st.lastFrame).Milliseconds()
		s.LastFrameAgeMS = &age
	}
	return s
}

// setState records the camera's state and, on a change, tells the
// manager's observer (an MQTT message through the outbox).
func (c *Camera) setState(state string, err error) {
	c.mu.Lock()
	changed := c.st.state != state
	c.st.state = state
	c.st.err = ""
	if err != nil {
		c.st.err = err.Error()
	}
	errText := c.st.err
	c.mu.Unlock()
	if changed && c.stateChanged != nil {
		c.stateChanged(c.cfg.ID, state, errText)
	}
}

// rate counts events in one-second buckets over the last rateWindow
// seconds.
type rate struct {
	sec [rateWindow]int64
	n   [rateWindow]int
}

const rateWindow = 5

func (r *rate) add(t time.Time) {
	s := t.Unix()
	i := s % rateWindow
	if r.sec[i] != s {
		r.sec[i], r.n[i] = s, 0
	}
	r.n[i]++
}

// perSecond averages the complete seconds of the window (the current,
// partial one is left out).
func (r *rate) perSecond(now time.Time) float64 {
	cur := now.Unix()
	total := 0
	for i := range rateWindow {
		if s := r.sec[i]; s < cur && s >= cur-(rateWindow-1) {
			total += r.n[i]
		}
	}
	return float64(total) / (rateWindow - 1)
}
