package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/facedhq/faced/daemon"
	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/index"
)

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return dispatch(ctx, "bench", map[string]command{"pipeline": benchPipeline, "index": benchIndex, "http": benchHTTP, "camera": benchCamera}, args, stdout, stderr)
}

// benchIndex measures 1:N search over synthetic unit vectors.
func benchIndex(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench index", "", stderr)
	var cfg index.BenchConfig
	fs.IntVar(&cfg.Size, "size", 100_000, "faces in the gallery")
	fs.IntVar(&cfg.Dim, "dim", 512, "embedding dimension")
	fs.IntVar(&cfg.Queries, "queries", 1000, "probes per mode")
	fs.Int64Var(&cfg.Seed, "seed", 1, "synthetic data seed")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := fs.parse(args); err != nil {
		return err
	}
	if cfg.Size < 1 || cfg.Dim < 1 || cfg.Queries < 1 {
		return errors.New("bench index: --size, --dim and --queries must be positive")
	}
	rep, err := index.RunBench(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(rep)
	}
	tw := tabwriter.NewWriter(stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintf(tw, "faces\t%d x %d-d (%s kernels, %d workers)\n", rep.Size, rep.Dim, rep.Kernels, rep.Workers)
	fmt.Fprintf(tw, "build\t%.3f s exact, %.3f s approximate\n", rep.BuildS, rep.ApproxBuildS)
	fmt.Fprintf(tw, "memory\t%.0f bytes per face\n", rep.BytesPerFace)
	fmt.Fprintf(tw, "exact search\tp50 %.2f ms, p95 %.2f ms\n", rep.ExactP50MS, rep.ExactP95MS)
	fmt.Fprintf(tw, "approximate search\tp50 %.2f ms, p95 %.2f ms\n", rep.ApproxP50MS, rep.ApproxP95MS)
	fmt.Fprintf(tw, "recall@1\t%.4f (enrolled %.4f, strangers %.4f)\n", rep.RecallAt1, rep.RecallEnrolled, rep.RecallUnenrolled)
	return tw.Flush()
}

// stageStats is the latency of one stage over a bench run.
type stageStats struct {
	MedianMS float64 `json:"median_ms"`
	P95MS    float64 `json:"p95_ms"`
}

// benchMode is one way of running the pipeline: one request at a time on
// one thread, or as many requests as cores.
type benchMode struct {
	Workers      int                   `json:"workers"`
	Sessions     int                   `json:"sessions"`
	Threads      int                   `json:"threads"`
	Calls        int                   `json:"calls"`
	ImagesPerSec float64               `json:"images_per_s"`
	Stages       map[string]stageStats `json:"stages"`
	// Total is one whole call; DetectAlignEmbed is decode excluded.
	Total            stageStats `json:"total"`
	DetectAlignEmbed stageStats `json:"detect_align_embed"`
}

type benchReport struct {
	Backend   string               `json:"backend"`
	Detector  string               `json:"detector"`
	Landmarks string               `json:"landmarks"`
	Embedder  string               `json:"embedder"`
	Liveness  string               `json:"liveness"`
	ImageSize string               `json:"image_size"`
	FacePx    int                  `json:"face_px,omitempty"`
	Images    int                  `json:"images"`
	ModelMB   float64              `json:"model_mb"`
	Modes     map[string]benchMode `json:"modes"`
}

func benchPipeline(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench pipeline", "", stderr)
	cfg := visionFlags(fs.FlagSet)
	imagesDir := fs.String("images", "../shared/data/deepface", "folder of photos (JPEG)")
	size := fs.String("size", "640x480", "re-frame every photo to WxH first (empty: as they are)")
	calls := fs.Int("calls", 100, "pipeline calls per mode")
	facePx := fs.Int("face-px", 0, "place each photo's face at this width (px) in the --size frame, as a camera further away sees it (0: re-frame the whole photo)")
	maxImages := fs.Int("max-images", 20, "one-face photos to cycle through")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *facePx < 0 || (*facePx > 0 && *size == "") {
		return errors.New("bench pipeline: --face-px needs a positive width and a --size frame")
	}
	deps, err := findDeps(cfg.DepsDir)
	if err != nil {
		return fmt.Errorf("bench pipeline: %w", err)
	}
	cfg.DepsDir = deps
	loadSize := *size
	if *facePx > 0 {
		loadSize = "" // placed below, once the detector has found each face
	}
	photos, err := loadPhotos(*imagesDir, loadSize)
	if err != nil {
		return err
	}

	rep := benchReport{Backend: cfg.Backend, Detector: cfg.Detector, Landmarks: cfg.Landmarks, Embedder: cfg.Embedder,
		Liveness: cfg.Liveness, ImageSize: *size, FacePx: *facePx, Modes: map[string]benchMode{}}
	cores := runtime.NumCPU()
	for _, mode := range []struct {
		name                       string
		workers, sessions, threads int
	}{
		{"single", 1, 1, 1},
		{"all_cores", cores, cores, 1},
	} {
		c := *cfg
		c.Sessions, c.Threads = mode.sessions, mode.threads
		v, err := openVision(ctx, c)
		if err != nil {
			return err
		}
		if rep.Images == 0 {
			if *facePx > 0 {
				if photos, err = placeFaces(ctx, v.Pipeline, photos, *size, *facePx); err != nil {
					v.Close()
					return err
				}
			}
			if photos, err = oneFacePhotos(ctx, v.Pipeline, photos, *maxImages); err != nil {
				v.Close()
				return err
			}
			rep.Images = len(photos)
			rep.ModelMB = modelMB(v)
		}
		m, err := runBench(ctx, v.Pipeline, photos, mode.workers, *calls, cfg.Liveness != "")
		v.Close()
		if err != nil {
			return err
		}
		m.Sessions, m.Threads = mode.sessions, mode.threads
		rep.Modes[mode.name] = m
	}

	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(stdout, "pipeline: %s / %s / %s / %s on %s, %d photos at %s, models %.1f MB\n",
		rep.Detector, rep.Landmarks, rep.Embedder, rep.Liveness, rep.Backend, rep.Images, rep.ImageSize, rep.ModelMB)
	tw := tabwriter.NewWriter(stdout, 0, 2, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "mode\tstage\tmedian ms\tp95 ms\t")
	for _, name := range []string{"single", "all_cores"} {
		m := rep.Modes[name]
		for _, st := range face.Stages {
			if s, ok := m.Stages[string(st)]; ok {
				fmt.Fprintf(tw, "%s\t%s\t%.2f\t%.2f\t\n", name, st, s.MedianMS, s.P95MS)
			}
		}
		fmt.Fprintf(tw, "%s\tdetect+align+embed\t%.2f\t%.2f\t\n", name, m.DetectAlignEmbed.MedianMS, m.DetectAlignEmbed.P95MS)
		fmt.Fprintf(tw, "%s\ttotal\t%.2f\t%.2f\t\n", name, m.Total.MedianMS, m.Total.P95MS)
		fmt.Fprintf(tw, "%s\timages/s\t%.1f\t(%d workers)\t\n", name, m.ImagesPerSec, m.Workers)
	}
	return tw.Flush()
}

// loadPhotos reads the JPEGs of a folder, re-framed to size when given.
func loadPhotos(dir, size string) ([][]byte, error) {
	var w, h int
	if size != "" {
		if _, err := fmt.Sscanf(size, "%dx%d", &w, &h); err != nil || w <= 0 || h <= 0 {
			return nil, fmt.Errorf("bad --size %q (want WxH)", size)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("%w (set --images to a folder of one-face JPEG photos)", err)
	}
	var photos [][]byte
	for _, e := range entries {
		ext := strings.ToLower(filepath.Ext(e.Name()))
		if ext != ".jpg" && ext != ".jpeg" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		if w > 0 {
			if data, err = face.Reframe(data, w, h); err != nil {
				return nil, fmt.Errorf("%s: %w", e.Name(), err)
			}
		}
		photos = append(photos, data)
	}
	if len(photos) == 0 {
		return nil, fmt.Errorf("no JPEG photos in %s", dir)
	}
	return photos, nil
}

// placeFaces re-frames every one-face photo to size with its face facePx
// wide (face.Place).
func placeFaces(ctx context.Context, p *face.Pipeline, photos [][]byte, size string, facePx int) ([][]byte, error) {
	var w, h int
	if _, err := fmt.Sscanf(size, "%dx%d", &w, &h); err != nil || w <= 0 || h <= 0 {
		return nil, fmt.Errorf("bad --size %q (want WxH)", size)
	}
	var out [][]byte
	for _, ph := range photos {
		faces, err := p.Detect(ctx, ph, face.Options{})
		if err != nil || len(faces) != 1 {
			continue
		}
		placed, err := face.Place(ph, faces[0].Box, w, h, facePx)
		if err != nil {
			continue // a face too small to be placed at facePx
		}
		out = append(out, placed)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no photo could be placed with a %d px face in %s", facePx, size)
	}
	return out, nil
}

// oneFacePhotos keeps the photos in which the pipeline finds exactly one
// face, so every call does the same work.
func oneFacePhotos(ctx context.Context, p *face.Pipeline, photos [][]byte, limit int) ([][]byte, error) {
	var out [][]byte
	for _, ph := range photos {
		faces, err := p.Detect(ctx, ph, face.Options{})
		if err != nil {
			continue
		}
		if len(faces) == 1 {
			out = append(out, ph)
		}
		if len(out) == limit {
			break
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no one-face photos found")
	}
	return out, nil
}

func runBench(ctx context.Context, p *face.Pipeline, photos [][]byte, workers, calls int, liveness bool) (benchMode, error) {
	opts := face.Options{Embed: true, Liveness: liveness, Selector: face.SelectBiggest}
	// Warm up: first runs allocate arenas and JIT kernels.
	for _, ph := range photos[:min(3, len(photos))] {
		if _, err := p.Detect(ctx, ph, opts); err != nil {
			return benchMode{}, err
		}
	}
	var (
		mu      sync.Mutex
		timings []face.Timings
		firstEr error
		wg      sync.WaitGroup
		next    = make(chan int)
	)
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for i := range next {
				o := opts
				o.Timings = face.Timings{}
				t0 := time.Now()
				_, err := p.Detect(ctx, photos[i%len(photos)], o)
				o.Timings["total"] = time.Since(t0)
				mu.Lock()
				if err != nil && firstEr == nil {
					firstEr = err
				}
				timings = append(timings, o.Timings)
				mu.Unlock()
			}
		})
	}
	for i := range calls {
		next <- i
	}
	close(next)
	wg.Wait()
	elapsed := time.Since(start)
	if firstEr != nil {
		return benchMode{}, firstEr
	}
	m := benchMode{Workers: workers, Calls: calls, ImagesPerSec: float64(calls) / elapsed.Seconds(), Stages: map[string]stageStats{}}
	for _, st := range face.Stages {
		if d := collect(timings, func(t face.Timings) (time.Duration, bool) { v, ok := t[st]; return v, ok }); d != nil {
			m.Stages[string(st)] = stats(d)
		}
	}
	m.Total = stats(collect(timings, func(t face.Timings) (time.Duration, bool) { return t["total"], true }))
	m.DetectAlignEmbed = stats(collect(timings, func(t face.Timings) (time.Duration, bool) {
		return t[face.StageDetect] + t[face.StageLandmarks] + t[face.StageAlign] + t[face.StageEmbed], true
	}))
	return m, nil
}

func collect(ts []face.Timings, get func(face.Timings) (time.Duration, bool)) []time.Duration {
	var out []time.Duration
	for _, t := range ts {
		if d, ok := get(t); ok {
			out = append(out, d)
		}
	}
	return out
}

func stats(d []time.Duration) stageStats {
	if len(d) == 0 {
		return stageStats{}
	}
	s := slices.Clone(d)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	ms := func(x time.Duration) float64 { return float64(x.Microseconds()) / 1000 }
	return stageStats{MedianMS: ms(s[len(s)/2]), P95MS: ms(s[min(len(s)-1, len(s)*95/100)])}
}

func modelMB(v *daemon.Vision) float64 {
	var total int64
	for _, s := range v.Pipeline.Models() {
		if st, err := os.Stat(filepath.Join(v.DepsDir, s.File)); err == nil {
			total += st.Size()
		}
	}
	return float64(total) / 1e6
}
