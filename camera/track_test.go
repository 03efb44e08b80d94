package camera

import (
	"strings"
	"testing"
	"time"

	"github.com/facedhq/faced/face"
)

func box(x, y, w float32) face.Face {
	return face.Face{Box: face.Box{X1: x, Y1: y, X2: x + w, Y2: y + w}}
}

// A face that grows and drifts keeps its track; a second face elsewhere
// gets its own; a track unseen for MaxAge expires.
func TestTrackerFollowsApproachingFace(t *testing.T) {
	tr := NewTracker(100)
	t0 := time.Unix(1000, 0)
	var first *Track
	for i := range 20 {
		w := float32(40 + 8*i) // grows 8 px per frame
		x := 500 + float32(6*i) - w/2
		at := t0.Add(time.Duration(i) * 100 * time.Millisecond)
		faces := []face.Face{box(x, 300-w/2, w)}
		if i == 5 {
			faces = append(faces, box(1500, 200, 60))
		}
		got := tr.Update(faces, at)
		if first == nil {
			first = got[0]
		}
		if got[0] != first {
			t.Fatalf("frame %d: the approaching face moved to track %d, want %d", i, got[0].ID, first.ID)
		}
		if i == 5 && (got[1] == first || got[1].ID != 102) {
			t.Fatalf("the second face shares a track or has id %d, want 102", got[1].ID)
		}
	}
	if first.ID != 101 {
		t.Fatalf("first track id %d, want 101 (ids continue after NewTracker's lastID)", first.ID)
	}
	if first.FirstLarge.IsZero() || !first.FirstLarge.After(first.First) {
		t.Fatalf("FirstLarge %v, want the frame the face reached %d px, after %v", first.FirstLarge, largeFace, first.First)
	}
	// The second face was seen once, at frame 5 (t0+0.5s): expired by now.
	gone := tr.Expire(t0.Add(1900 * time.Millisecond))
	if len(gone) != 1 || gone[0].ID != 102 || tr.Active() != 1 {
		t.Fatalf("expired %v, active %d; want track 102 gone and 1 active", gone, tr.Active())
	}
}

func shot(person string, conf float32, matched bool, live float32) Shot {
	return Shot{Best: Candidate{PersonID: person, Confidence: conf, Matched: matched}, Liveness: &live, Quality: conf}
}

func TestPolicyDecides(t *testing.T) {
	t0 := time.Unix(1000, 0)
	p := DefaultPolicy
	p.RequireLiveness = true
	cases := []struct {
		name    string
		shots   []Shot
		final   bool
		decided bool
		matched bool
		spoof   bool
		person  string
	}{
		{"one match waits for a second", []Shot{shot("a", .9, true, .9)}, false, false, false, false, ""},
		{"two agreeing matches decide", []Shot{shot("a", .9, true, .9), shot("a", .85, true, .8)}, false, true, true, false, "a"},
		{"disagreeing shots wait", []Shot{shot("a", .9, true, .9), shot("b", .8, true, .9)}, false, false, false, false, ""},
		{"n shots without agreement are unknown", []Shot{shot("a", .9, true, .9), shot("b", .8, true, .9), shot("c", .6, false, .9), shot("a", .6, false, .9), shot("b", .6, false, .9)}, false, true, false, false, "a"},
		{"agreeing matches of a spoof are refused", []Shot{shot("a", .9, true, .1), shot("a", .9, true, .2)}, false, true, false, true, "a"},
		{"an ended track decides on its one shot", []Shot{shot("a", .9, true, .9)}, true, true, true, false, "a"},
		{"an ended track of strangers is unknown", []Shot{shot("a", .5, false, .9), shot("b", .4, false, .9)}, true, true, false, false, "a"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tk := &Track{ID: 7, First: t0, Shots: c.shots}
			d, ok := p.Decide(tk, t0.Add(300*time.Millisecond), c.final)
			if ok != c.decided {
				t.Fatalf("decided %v, want %v", ok, c.decided)
			}
			if !ok {
				return
			}
			if d.Matched != c.matched || d.Spoof != c.spoof || d.Person.PersonID != c.person {
				t.Fatalf("decision %+v, want matched %v spoof %v person (or best candidate) %q", d, c.matched, c.spoof, c.person)
			}
			if d.Person.Matched != d.Matched {
				t.Fatalf("candidate matched %v but decision matched %v", d.Person.Matched, d.Matched)
			}
			if d.Latency != 300*time.Millisecond {
				t.Fatalf("latency %v, want 300ms from the track's first frame", d.Latency)
			}
		})
	}
}

func TestConfigCheckNamesTheSetting(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{URL: "rtsp://cam/1"}, "id"},
		{Config{ID: "a", URL: "ftp://cam/1"}, "scheme"},
		{Config{ID: "a", URL: "rtsp:///x"}, "host"},
		{Config{ID: "a", URL: "rtsp://cam/1", FPS: 100}, "fps"},
		{Config{ID: "a", URL: "rtsp://cam/1", MinFacePx: -1}, "min_face_px"},
		{Config{ID: "a", URL: "rtsp://cam/1", ROI: &ROI{X: .5, Y: 0, W: .6, H: 1}}, "roi"},
	} {
		err := c.cfg.Check()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one naming %q", c.cfg, err, c.want)
		}
	}
}

func TestRedactHidesPassword(t *testing.T) {
	got := Redact("rtsp://admin:s3cret@10.0.0.5:554/stream1")
	if strings.Contains(got, "s3cret") || !strings.Contains(got, "10.0.0.5") {
		t.Fatalf("Redact gave %q", got)
	}
}
