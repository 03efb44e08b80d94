package camera

import (
	"sort"
	"time"

	"github.com/facedhq/faced/face"
)

// largeFace is the face size from which decision latency is counted: the
// size at which a door camera's subject is close enough to be decided.
const largeFace = 80

// Candidate is the best match of one shot (or of a decision): a person and
// the confidence on the API's scale. Matched is false when the best
// candidate fell below the threshold (or there was none: PersonID empty).
type Candidate struct {
	PersonID   string
	Name       string
	FaceID     uint64
	Gallery    string
	Confidence float32
	Matched    bool
}

// Shot is one embedded and scored sighting of a tracked face.
type Shot struct {
	Time     time.Time
	Quality  float32
	Best     Candidate
	Liveness *float32
	Crop     []byte // aligned crop, when crops are kept
	Box      face.Box

	embedding []float32
}

// Track follows one face across frames.
type Track struct {
	ID         uint64
	Box        face.Box
	First      time.Time // first sighting
	FirstLarge time.Time // first sighting at largeFace px or more; zero until then
	LastSeen   time.Time
	Shots      []Shot
	Decided    bool
	Label      string  // what the annotated frame shows: a name, "unknown", "spoof", or ""
	vx, vy     float32 // centre velocity, px per second, for matching fast motion
}

// Tracker assigns the faces of successive frames to tracks: greedy by
// overlap (IoU) with each track's box moved by its velocity, so a face
// walking towards the camera keeps its track while it grows. It is not
// safe for concurrent use; each camera has its own.
type Tracker struct {
	next   uint64
	tracks []*Track
	// MaxAge is how long a track survives without a sighting.
	MaxAge time.Duration
}

// minIoU is the overlap below which a face is not the track's.
const minIoU = 0.25

// NewTracker returns a tracker whose track ids start after lastID (the
// camera passes a time-based value, so ids stay unique across restarts).
func NewTracker(lastID uint64) *Tracker {
	return &Tracker{next: lastID, MaxAge: time.Second}
}

// Update matches the faces of the frame taken at t to tracks, creating
// tracks for new faces; it returns each face's track, in the faces' order.
func (tr *Tracker) Update(faces []face.Face, t time.Time) []*Track {
	type pair struct {
		iou    float32
		ti, fi int
	}
	var pairs []pair
	for ti, tk := range tr.tracks {
		pred := tk.predict(t)
		for fi, f := range faces {
			if v := iou(pred, f.Box); v >= minIoU {
				pairs = append(pairs, pair{v, ti, fi})
			}
		}
	}
	sort.Slice(pairs, func(i, j int) bool { return pairs[i].iou > pairs[j].iou })
	out := make([]*Track, len(faces))
	used := make([]bool, len(tr.tracks))
	for _, p := range pairs {
		if used[p.ti] || out[p.fi] != nil {
			continue
		}
		used[p.ti] = true
		out[p.fi] = tr.tracks[p.ti]
	}
	for fi, f := range faces {
		tk := out[fi]
		if tk == nil {
			tr.next++
			tk = &Track{ID: tr.next, Box: f.Box, First: t}
			tr.tracks = append(tr.tracks, tk)
			out[fi] = tk
		} else if dt := float32(t.Sub(tk.LastSeen).Seconds()); dt > 0 {
			cx0, cy0 := center(tk.Box)
			cx1, cy1 := center(f.Box)
			// Smoothed, so one jittery box does not fling the prediction.
			tk.vx = 0.5*tk.vx + 0.5*(cx1-cx0)/dt
			tk.vy = 0.5*tk.vy + 0.5*(cy1-cy0)/dt
		}
		tk.Box, tk.LastSeen = f.Box, t
		if tk.FirstLarge.IsZero() && min(f.Box.Width(), f.Box.Height()) >= largeFace {
			tk.FirstLarge = t
		}
	}
	return out
}

// Expire removes and returns the tracks not seen for MaxAge before t.
func (tr *Tracker) Expire(t time.Time) []*Track {
	var gone []*Track
	kept := tr.tracks[:0]
	for _, tk := range tr.tracks {
		if t.Sub(tk.LastSeen) > tr.MaxAge {
			gone = append(gone, tk)
		} else {
			kept = append(kept, tk)
		}
	}
	clear(tr.tracks[len(kept):])
	tr.tracks = kept
	return gone
}

// Flush removes and returns every track (the camera is stopping or its
// clip ended).
func (tr *Tracker) Flush() []*Track {
	all := tr.tracks
	tr.tracks = nil
	return all
}

// Active is the number of live tracks.
func (tr *Tracker) Active() int { return len(tr.tracks) }

// predict moves the track's box by its velocity to time t.
func (tk *Track) predict(t time.Time) face.Box {
	dt := float32(t.Sub(tk.LastSeen).Seconds())
	dx, dy := tk.vx*dt, tk.vy*dt
	b := tk.Box
	return face.Box{X1: b.X1 + dx, Y1: b.Y1 + dy, X2: b.X2 + dx, Y2: b.Y2 + dy}
}

func center(b face.Box) (float32, float32) { return (b.X1 + b.X2) / 2, (b.Y1 + b.Y2) / 2 }

func iou(a, b face.Box) float32 {
	x1, y1 := max(a.X1, b.X1), max(a.Y1, b.Y1)
	x2, y2 := min(a.X2, b.X2), min(a.Y2, b.Y2)
	inter := max(0, x2-x1) * max(0, y2-y1)
	union := a.Area() + b.Area() - inter
	if union <= 0 {
		return 0
	}
	return inter / union
}

// Policy is how a track is decided.
type Policy struct {
	// Agree is k of k-of-n: how many shots must name the same person.
	Agree int
	// MaxShots is n: a track whose MaxShots shots do not agree is unknown.
	MaxShots int
	// RequireLiveness refuses a match whose shots' mean liveness is below
	// LiveThreshold (the liveness model's 0.5 boundary by default).
	RequireLiveness bool
	LiveThreshold   float32
}

// DefaultPolicy decides on 2 agreeing shots of at most 5. At 10 processed
// frames per second the second shot comes 100 ms after the first, which
// keeps decisions within the few hundred milliseconds a door allows; one
// shot alone is what a single photo gives, and the second catches the
// blurred or half-turned frame that matches the wrong person.
var DefaultPolicy = Policy{Agree: 2, MaxShots: 5, LiveThreshold: 0.5}

// Decision is a track's one outcome.
type Decision struct {
	TrackID uint64
	// Person is the decided person; Matched is false for unknown (and
	// then Person holds the best candidate, as evidence) and for a match
	// refused for liveness (Spoof).
	Person   Candidate
	Matched  bool
	Spoof    bool
	Liveness *float32 // mean over the shots; nil when not scored
	Live     bool
	Latency  time.Duration
	Best     Shot // the best-quality shot (its crop, when kept)
	Time     time.Time
}

// Decide applies the policy to the track's shots at time t. final is set
// when the track has ended: then it is decided on what it has (when it has
// any shot) rather than waiting for more.
func (p Policy) Decide(tk *Track, t time.Time, final bool) (Decision, bool) {
	if tk.Decided || len(tk.Shots) == 0 {
		return Decision{}, false
	}
	votes := map[string]int{}
	var leader string
	for _, s := range tk.Shots {
		if s.Best.Matched {
			votes[s.Best.PersonID]++
			if votes[s.Best.PersonID] > votes[leader] {
				leader = s.Best.PersonID
			}
		}
	}
	need := p.Agree
	if final {
		// An ended track decides on a majority of what it saw.
		need = min(need, len(tk.Shots)/2+1)
	}
	agreed := leader != "" && votes[leader] >= need
	if !agreed && !final && len(tk.Shots) < p.MaxShots {
		return Decision{}, false
	}
	d := Decision{TrackID: tk.ID, Time: t}
	d.Best = tk.Shots[0]
	for _, s := range tk.Shots {
		if s.Quality > d.Best.Quality {
			d.Best = s
		}
		if agreed {
			if s.Best.Matched && s.Best.PersonID == leader && s.Best.Confidence > d.Person.Confidence {
				d.Person = s.Best
			}
		} else if s.Best.Confidence > d.Person.Confidence {
			d.Person = s.Best
		}
	}
	var sum float32
	var n int
	for _, s := range tk.Shots {
		if s.Liveness != nil {
			sum += *s.Liveness
			n++
		}
	}
	d.Live = true
	if n > 0 {
		mean := sum / float32(n)
		d.Liveness = &mean
		d.Live = mean >= p.LiveThreshold
	}
	// A spoof is refused whoever it resembles: a printed photo of a
	// stranger is still an attack worth reporting as one.
	d.Spoof = p.RequireLiveness && !d.Live
	d.Matched = agreed && !d.Spoof
	if !d.Matched {
		d.Person.Matched = false
	}
	start := tk.FirstLarge
	if start.IsZero() || start.After(t) {
		start = tk.First
	}
	d.Latency = max(0, t.Sub(start))
	return d, true
}
