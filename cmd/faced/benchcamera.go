package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/facedhq/faced/camera"
	"github.com/facedhq/faced/daemon"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// cameraBenchReport is the output of `faced bench camera --json`; the
// first five fields are a contract with scripts outside the project.
type cameraBenchReport struct {
	ProcessedFPS  float64 `json:"processed_fps"` // per camera, mean over cameras
	CPUCores      float64 `json:"cpu_cores"`     // cores used by the whole process during the run
	DecisionP50MS float64 `json:"decision_p50_ms"`
	DecisionP95MS float64 `json:"decision_p95_ms"`
	Events        int     `json:"events"`

	Clip            string             `json:"clip"`
	Cameras         int                `json:"cameras"`
	Seconds         float64            `json:"seconds"`
	CPUCoresPerCam  float64            `json:"cpu_cores_per_camera"`
	InputFPS        float64            `json:"input_fps"` // per camera, mean
	Drops           uint64             `json:"drops"`
	Matched         int                `json:"matched"`
	PerCamera       []cameraBenchEntry `json:"per_camera"`
	Detector        string             `json:"detector"`
	Embedder        string             `json:"embedder"`
	RequireLiveness bool               `json:"require_liveness"`
}

type cameraBenchEntry struct {
	ID           string  `json:"id"`
	ProcessedFPS float64 `json:"processed_fps"`
	InputFPS     float64 `json:"input_fps"`
	Drops        uint64  `json:"drops"`
	Events       int     `json:"events"`
}

// benchCamera replays a clip through the whole camera loop (decode,
// detect, track, embed, decide, record) at real-time speed on N cameras at
// once, in a throw-away store, and reports CPU, rates and decision
// latency.
func benchCamera(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench camera", "", stderr)
	cfg := visionFlags(fs.FlagSet)
	clip := fs.String("clip", "", "video clip to replay (required), e.g. an MP4 from a door camera")
	n := fs.Int("cameras", 1, "cameras replaying the clip at once")
	seconds := fs.Float64("seconds", 20, "how long to run (the clip loops)")
	fps := fs.Float64("fps", camera.DefaultFPS, "frames processed per second per camera")
	enrol := fs.String("enrol", "", "photo of the person in the clip to enrol first, so decisions are matches (default: none, every decision is unknown)")
	liveness := fs.Bool("require-liveness", true, "score liveness on each shot, as a door camera does")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := fs.parse(args); err != nil {
		return err
	}
	switch {
	case *clip == "":
		return errors.New("bench camera: --clip FILE is required")
	case *n < 1 || *n > 16:
		return errors.New("bench camera: --cameras must be 1..16")
	case *seconds < 1:
		return errors.New("bench camera: --seconds must be at least 1")
	}
	abs, err := filepath.Abs(*clip)
	if err != nil {
		return err
	}
	if _, err := os.Stat(abs); err != nil {
		return fmt.Errorf("bench camera: %w", err)
	}
	if !*liveness {
		cfg.Liveness = ""
	}
	if cfg.DepsDir, err = findDeps(cfg.DepsDir); err != nil {
		return fmt.Errorf("bench camera: %w", err)
	}
	v, err := daemon.OpenVision(ctx, *cfg)
	if err != nil {
		return err
	}
	defer v.Close()
	dir, err := os.MkdirTemp("", "faced-bench-camera-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	db, err := store.Open(filepath.Join(dir, "faced.db"), store.Options{})
	if err != nil {
		return err
	}
	defer db.Close()
	svc, err := service.New(ctx, db, v.Pipeline, service.Config{}, nil)
	if err != nil {
		return err
	}
	if *enrol != "" {
		photo, err := os.ReadFile(*enrol)
		if err != nil {
			return fmt.Errorf("bench camera: --enrol: %w", err)
		}
		if _, _, err := svc.Enroll(ctx, service.EnrollRequest{Person: store.Person{ID: "bench-person"}, Photos: [][]byte{photo}}); err != nil {
			return fmt.Errorf("bench camera: --enrol: %w", err)
		}
	}
	var cams []*camera.Camera
	for i := range *n {
		c, err := camera.New(camera.Config{
			ID: fmt.Sprintf("cam-%d", i+1), URL: "file://" + abs, FPS: *fps, Loop: true,
			RequireLiveness: *liveness,
			// Every passage of the looping clip is a decision to time.
			RepeatAfter: time.Nanosecond,
		}, svc, nil)
		if err != nil {
			return err
		}
		cams = append(cams, c)
	}

	runCtx, cancel := context.WithTimeout(ctx, time.Duration(*seconds*float64(time.Second)))
	defer cancel()
	cpu0, start := cpuTime(), time.Now()
	var wg sync.WaitGroup
	for _, c := range cams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Run(runCtx)
		}()
	}
	wg.Wait()
	wall, cpu := time.Since(start), cpuTime()-cpu0

	rep := cameraBenchReport{Clip: abs, Cameras: *n, Seconds: wall.Seconds(), Detector: cfg.Detector, Embedder: cfg.Embedder,
		RequireLiveness: *liveness}
	rep.CPUCores = cpu.Seconds() / wall.Seconds()
	rep.CPUCoresPerCam = rep.CPUCores / float64(*n)
	var lat []time.Duration
	for _, c := range cams {
		st := c.Status()
		page, err := db.ListEvents(ctx, store.EventQuery{CameraIDs: []string{c.ID()}, Limit: store.MaxLimit})
		if err != nil {
			return err
		}
		e := cameraBenchEntry{ID: c.ID(), ProcessedFPS: float64(st.Processed) / wall.Seconds(),
			InputFPS: float64(st.Frames) / wall.Seconds(), Drops: st.Drops, Events: len(page.Items)}
		for _, ev := range page.Items {
			if ev.Track != nil {
				lat = append(lat, ev.Track.Latency)
			}
			if ev.Matched {
				rep.Matched++
			}
		}
		rep.PerCamera = append(rep.PerCamera, e)
		rep.ProcessedFPS += e.ProcessedFPS / float64(*n)
		rep.InputFPS += e.InputFPS / float64(*n)
		rep.Drops += e.Drops
		rep.Events += e.Events
	}
	slices.Sort(lat)
	rep.DecisionP50MS, rep.DecisionP95MS = percentileMS(lat, 0.50), percentileMS(lat, 0.95)
	if *asJSON {
		return json.NewEncoder(stdout).Encode(rep)
	}
	tw := tabwriter.NewWriter(stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintf(tw, "clip\t%s, %d camera(s), %.1f s\n", rep.Clip, rep.Cameras, rep.Seconds)
	fmt.Fprintf(tw, "cpu\t%.2f cores (%.2f per camera)\n", rep.CPUCores, rep.CPUCoresPerCam)
	fmt.Fprintf(tw, "frames per camera\t%.1f fps in, %.1f fps processed, %d dropped in all\n", rep.InputFPS, rep.ProcessedFPS, rep.Drops)
	fmt.Fprintf(tw, "decisions\t%d (%d matched), latency p50 %.0f ms, p95 %.0f ms\n", rep.Events, rep.Matched, rep.DecisionP50MS, rep.DecisionP95MS)
	return tw.Flush()
}

// cpuTime is the user and system CPU time of the whole process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// percentileMS is the q-quantile of sorted durations in ms (0 when empty).
func percentileMS(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := min(len(sorted)-1, int(q*float64(len(sorted))))
	return float64(sorted[i]) / float64(time.Millisecond)
}
