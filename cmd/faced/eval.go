package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/facedhq/faced/daemon"
	"github.com/facedhq/faced/eval"
	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/models"
	"github.com/facedhq/faced/service"
)

func cmdEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return dispatch(ctx, "eval", map[string]command{"verify": evalVerify, "detect": evalDetect, "liveness": evalLiveness}, args, stdout, stderr)
}

// openForEval loads the pipeline with one session per core, since eval
// pushes many photos through it.
func openForEval(ctx context.Context, cfg daemon.VisionConfig) (*daemon.Vision, int, error) {
	workers := runtime.NumCPU()
	cfg.Sessions = workers
	v, err := openVision(ctx, cfg)
	return v, workers, err
}

// forEach runs fn on every item with n workers, stopping at the first error.
func forEach[T any](ctx context.Context, items []T, n int, fn func(context.Context, T) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	jobs := make(chan T)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for it := range jobs {
				if err := fn(ctx, it); err != nil {
					cancel(err)
				}
			}
		})
	}
	for _, it := range items {
		select {
		case jobs <- it:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	return context.Cause(ctx)
}

func evalVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("eval verify", "", stderr)
	cfg := visionFlags(fs.FlagSet)
	pairsFile := fs.String("pairs", "", "pairs file: LFW pairs.txt, or CSV file_x,file_y,Decision")
	imagesDir := fs.String("images", "", "image folder (LFW layout for pairs.txt, flat for CSV)")
	openSet := fs.Bool("open-set", true, "with LFW-layout images (one folder per person): calibrate on every cross-identity pair, check the presets on held-out folds, and measure enrolling 1 vs 3 photos")
	sample := fs.Int64("impostor-sample", 0, "score a seeded random sample of about this many cross-identity pairs instead of all (0: all)")
	seed := fs.Uint64("seed", 1, "seed of --impostor-sample")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *pairsFile == "" || *imagesDir == "" {
		return errors.New("eval verify: --pairs and --images are required")
	}
	if *sample < 0 {
		return errors.New("eval verify: --impostor-sample must not be negative")
	}
	f, err := os.Open(*pairsFile)
	if err != nil {
		return err
	}
	pairs, folds, err := eval.ParsePairs(f)
	f.Close()
	if err != nil {
		return err
	}
	cfg.Liveness = ""
	v, workers, err := openForEval(ctx, *cfg)
	if err != nil {
		return err
	}
	defer v.Close()

	// Embed every distinct image once: the central face of a photo cut
	// around its person (LFW), else the biggest.
	selector := face.SelectBiggest
	if len(pairs) > 0 && pairs[0].Centred {
		selector = face.SelectCentral
	}
	var paths []string
	seen := map[string]bool{}
	for _, p := range pairs {
		for _, x := range []string{p.A, p.B} {
			if !seen[x] {
				seen[x] = true
				paths = append(paths, x)
			}
		}
	}
	var mu sync.Mutex
	emb := make(map[string][]float32, len(paths))
	err = forEach(ctx, paths, workers, func(ctx context.Context, rel string) error {
		data, err := os.ReadFile(filepath.Join(*imagesDir, filepath.FromSlash(rel)))
		if err != nil {
			return err
		}
		faces, err := v.Pipeline.Detect(ctx, data, face.Options{Embed: true, Selector: selector})
		if err != nil && !isBadPhoto(err) {
			return fmt.Errorf("%s: %w", rel, err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(faces) > 0 {
			emb[rel] = faces[0].Embedding
		} else {
			emb[rel] = nil
		}
		return nil
	})
	if err != nil {
		return err
	}

	run := eval.Run{Folds: folds, Embedder: v.Pipeline.EmbedderID(), Detector: cfg.Detector, Backend: cfg.Backend}
	for _, e := range emb {
		if e == nil {
			run.NoFace++
		}
	}
	for _, p := range pairs {
		a, b := emb[p.A], emb[p.B]
		if a == nil || b == nil {
			run.Skipped++
			continue
		}
		run.Pairs = append(run.Pairs, p)
		run.Scores = append(run.Scores, float64(models.Cosine(a, b)))
	}
	rep, err := eval.Summarize(run)
	if err != nil {
		return err
	}
	out := verifyReport{Report: rep}
	calib, calibrated := calibrationFor(*cfg, v.Pipeline.EmbedderID())
	if calibrated {
		conf := func(sim float64) float64 { return float64(calib.Confidence(float32(sim))) }
		out.Report.Confidence = conf
		out.ThresholdConfidence, out.FAR1e3Confidence = ptr(conf(rep.Threshold)), ptr(conf(rep.FAR1e3Threshold))
		out.APIPresets = map[string]presetScale{}
		for name, sim := range calib.Presets() {
			out.APIPresets[name] = presetScale{Confidence: conf(sim), Similarity: sim}
		}
	}
	if *openSet {
		if out.OpenSet, out.Enrolment, err = openSetEval(pairs, emb, v.Pipeline.EmbedderID(), calib, calibrated, eval.OpenSetOptions{MaxImpostors: *sample, Seed: *seed}); err != nil {
			return err
		}
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(out)
	}
	if err := out.Report.WriteText(stdout); err != nil {
		return err
	}
	if err := writeAPIPresets(stdout, out); err != nil {
		return err
	}
	return writeOpenSet(stdout, out)
}

func ptr[T any](v T) *T { return &v }

// calibrationFor is the calibration the daemon would use for the embedder
// (ID "name@sha"): a custom model's from --custom-models, else the
// built-in one.
func calibrationFor(cfg daemon.VisionConfig, embedderID string) (calibration, bool) {
	name, _, _ := strings.Cut(embedderID, "@")
	c, ok := service.LookupCalibration(name, cfg.CustomCalibrations())
	return calibration{c}, ok
}

// calibration is an embedder's service.Calibration with its presets by
// name, as similarities.
type calibration struct{ service.Calibration }

func (c calibration) Presets() map[string]float64 {
	return map[string]float64{"low": float64(c.Low), "medium": float64(c.Medium), "strict": float64(c.Strict)}
}

// presetScale is one threshold on both scales.
type presetScale struct {
	Confidence float64 `json:"confidence"`
	Similarity float64 `json:"similarity"`
}

// writeAPIPresets prints the presets the API applies for this embedder,
// on both scales: what `threshold=medium` means in similarity.
func writeAPIPresets(w io.Writer, r verifyReport) error {
	if len(r.APIPresets) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "\nAPI presets for %s (threshold=NAME, or pass the confidence)\n", r.Embedder)
	for _, name := range []string{"strict", "medium", "low"} {
		p := r.APIPresets[name]
		fmt.Fprintf(tw, "preset %s:\tconfidence %.4f\t(similarity %.4f)\n", name, p.Confidence, p.Similarity)
	}
	return tw.Flush()
}

// verifyReport is `faced eval verify --json`: the pairs report, and the
// open-set calibration when the images have identities.
type verifyReport struct {
	eval.Report
	// The confidences (the API's threshold scale) of the report's
	// similarity thresholds and the API's presets; absent when the
	// embedder has no calibration.
	ThresholdConfidence *float64               `json:"threshold_confidence,omitempty"`
	FAR1e3Confidence    *float64               `json:"far_1e3_confidence,omitempty"`
	APIPresets          map[string]presetScale `json:"api_presets,omitempty"`
	OpenSet             *eval.OpenSetReport    `json:"open_set,omitempty"`
	Enrolment           []eval.EnrolmentPoint  `json:"enrolment,omitempty"`
}

// openSetEval calibrates on every cross-identity pair of the embedded
// images (identities from LFW's folder layout; folds from the pairs that
// use them) and measures the thresholds in use. It returns nothing when
// the images carry no identities (a flat folder with a CSV of pairs).
func openSetEval(pairs []eval.Pair, emb map[string][]float32, embedderID string, calib calibration, calibrated bool, opt eval.OpenSetOptions) (*eval.OpenSetReport, []eval.EnrolmentPoint, error) {
	fold := map[string]int{}
	for _, p := range pairs {
		for _, x := range []string{p.A, p.B} {
			id := eval.IdentityOf(x)
			if f, ok := fold[id]; ok && f != p.Fold {
				fold[id] = -1 // in two folds: not identity-disjoint
			} else if !ok {
				fold[id] = p.Fold
			}
		}
	}
	var imgs []eval.Labelled
	paths := make([]string, 0, len(emb))
	for p, v := range emb {
		if v != nil && eval.IdentityOf(p) != "" {
			paths = append(paths, p)
		}
	}
	if len(paths) == 0 {
		return nil, nil, nil
	}
	sort.Strings(paths) // LFW names sort by person, then photo number
	for _, p := range paths {
		id := eval.IdentityOf(p)
		imgs = append(imgs, eval.Labelled{Identity: id, Fold: fold[id], Vec: emb[p]})
	}
	if calibrated {
		opt.Check = calib.Presets()
	}
	rep, err := eval.OpenSet(imgs, opt)
	if err != nil {
		return nil, nil, err
	}
	// Enrolment at the medium preset's FAR, as calibrated here.
	medium := eval.PresetFARs["medium"]
	var thr float64
	for _, pt := range rep.Points {
		if pt.FAR == medium {
			thr = pt.Threshold
		}
	}
	enrol, err := eval.EnrolmentRun(imgs, thr, []int{1, 3})
	if err != nil {
		enrol = nil // too few people with 4 photos: report the rest
	}
	return &rep, enrol, nil
}

func writeOpenSet(w io.Writer, r verifyReport) error {
	if r.OpenSet == nil {
		return nil
	}
	o := r.OpenSet
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	kind := "every"
	if o.Sampled {
		kind = "a seeded sample of the"
	}
	fmt.Fprintf(tw, "\nopen set\t%d images of %d people: %s cross-identity pair (%d), %d same-identity pairs\n", o.Images, o.Identities, kind, o.ImpostorPairs, o.GenuinePairs)
	conf := func(sim float64) string {
		if r.Report.Confidence == nil {
			return "-"
		}
		return fmt.Sprintf("%.4f", r.Report.Confidence(sim))
	}
	fmt.Fprintf(tw, "FAR\tconfidence threshold\t(similarity)\tGAR (genuine accepted)\theld-out FAR (accepted / pairs)\n")
	for _, p := range o.Points {
		fmt.Fprintf(tw, "%g\t%s\t(%.4f)\t%.2f%%\t%.2g (%d / %d)\n", p.FAR, conf(p.Threshold), p.Threshold, 100*p.GAR, p.HeldOutFAR, p.HeldOutAccepts, p.HeldOutPairs)
	}
	if len(o.Checks) > 0 {
		fmt.Fprintf(tw, "preset in use\tconfidence threshold\t(similarity)\tmeasured FAR\tGAR\n")
		for _, c := range o.Checks {
			fmt.Fprintf(tw, "%s\t%s\t(%.4f)\t%.2g\t%.2f%%\n", c.Name, conf(c.Threshold), c.Threshold, c.FAR, 100*c.GAR)
		}
	}
	if len(r.Enrolment) > 0 {
		fmt.Fprintf(tw, "enrolled photos\tcompare with\tTAR at medium\tFAR\t(persons, probes)\n")
		for _, e := range r.Enrolment {
			fmt.Fprintf(tw, "%d\t%s\t%.2f%%\t%.2g\t(%d, %d)\n", e.Photos, e.Strategy, 100*e.TAR, e.FAR, e.Persons, e.Probes)
		}
	}
	return tw.Flush()
}

// isBadPhoto reports errors that mean "this photo cannot be used" rather
// than "the evaluation is broken".
func isBadPhoto(err error) bool {
	var many *face.ErrTooManyFaces
	return errors.Is(err, face.ErrCorrupt) || errors.Is(err, face.ErrUnsupportedFormat) ||
		errors.Is(err, face.ErrTooSmall) || errors.Is(err, face.ErrTooManyPixels) ||
		errors.Is(err, face.ErrTooLarge) || errors.Is(err, face.ErrEmpty) || errors.As(err, &many)
}

// photoFiles lists the photos of a folder (not recursive), sorted.
func photoFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".jpg", ".jpeg", ".png", ".webp", ".bmp":
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// detectReport is the result of `faced eval detect`.
type detectReport struct {
	Images         int     `json:"images"`
	ImagesWithFace int     `json:"images_with_face"`
	Faces          int     `json:"faces"`
	Annotated      int     `json:"annotated_faces,omitempty"`
	Matched        int     `json:"matched_faces,omitempty"` // annotations hit at IoU >= 0.5
	Recall         float64 `json:"recall,omitempty"`
	Precision      float64 `json:"precision,omitempty"`
	Detector       string  `json:"detector"`
	Backend        string  `json:"backend"`
}

// evalDetect runs the detector over a folder. With --annotations (CSV
// file,x1,y1,x2,y2, one face per line, pixels) it reports recall and
// precision at IoU 0.5; without, the share of photos where a face is found,
// which is the recall on sets known to hold a face in every photo.
func evalDetect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("eval detect", "", stderr)
	cfg := visionFlags(fs.FlagSet)
	imagesDir := fs.String("images", "", "folder of photos")
	annFile := fs.String("annotations", "", "CSV file,x1,y1,x2,y2 of every face (optional)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *imagesDir == "" {
		return errors.New("eval detect: --images is required")
	}
	var ann map[string][]face.Box
	files, err := photoFiles(*imagesDir)
	if err != nil {
		return err
	}
	if *annFile != "" {
		if ann, err = readAnnotations(*annFile); err != nil {
			return err
		}
		files = files[:0]
		for f := range ann {
			files = append(files, f)
		}
		sort.Strings(files)
	}
	cfg.Embedder, cfg.Liveness = "", ""
	v, workers, err := openForEval(ctx, *cfg)
	if err != nil {
		return err
	}
	defer v.Close()

	rep := detectReport{Images: len(files), Detector: cfg.Detector, Backend: cfg.Backend}
	var mu sync.Mutex
	err = forEach(ctx, files, workers, func(ctx context.Context, name string) error {
		data, err := os.ReadFile(filepath.Join(*imagesDir, name))
		if err != nil {
			return err
		}
		faces, err := v.Pipeline.Detect(ctx, data, face.Options{})
		if err != nil && !isBadPhoto(err) {
			return fmt.Errorf("%s: %w", name, err)
		}
		mu.Lock()
		defer mu.Unlock()
		rep.Faces += len(faces)
		if len(faces) > 0 {
			rep.ImagesWithFace++
		}
		if ann != nil {
			truth := ann[name]
			rep.Annotated += len(truth)
			used := make([]bool, len(faces))
			for _, t := range truth {
				for i, f := range faces {
					if !used[i] && boxIoU(t, f.Box) >= 0.5 {
						used[i] = true
						rep.Matched++
						break
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if rep.Annotated > 0 {
		rep.Recall = float64(rep.Matched) / float64(rep.Annotated)
	}
	if ann != nil && rep.Faces > 0 {
		rep.Precision = float64(rep.Matched) / float64(rep.Faces)
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(rep)
	}
	tw := tabwriter.NewWriter(stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintf(tw, "detector\t%s on %s\n", rep.Detector, rep.Backend)
	fmt.Fprintf(tw, "images\t%d\n", rep.Images)
	fmt.Fprintf(tw, "images with a face\t%d (%.1f%%)\n", rep.ImagesWithFace, 100*float64(rep.ImagesWithFace)/float64(max(1, rep.Images)))
	fmt.Fprintf(tw, "faces found\t%d\n", rep.Faces)
	if ann != nil {
		fmt.Fprintf(tw, "recall@IoU0.5\t%.3f (%d of %d)\n", rep.Recall, rep.Matched, rep.Annotated)
		fmt.Fprintf(tw, "precision@IoU0.5\t%.3f\n", rep.Precision)
	}
	return tw.Flush()
}

func readAnnotations(path string) (map[string][]face.Box, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.FieldsPerRecord = 5
	out := map[string][]face.Box{}
	for line := 1; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		var v [4]float64
		for i := range v {
			if v[i], err = strconv.ParseFloat(strings.TrimSpace(rec[i+1]), 32); err != nil {
				if line == 1 {
					break // header
				}
				return nil, fmt.Errorf("%s:%d: %w", path, line, err)
			}
		}
		if err == nil {
			out[rec[0]] = append(out[rec[0]], face.Box{X1: float32(v[0]), Y1: float32(v[1]), X2: float32(v[2]), Y2: float32(v[3])})
		}
	}
}

func boxIoU(a, b face.Box) float64 {
	inter := face.Box{X1: max(a.X1, b.X1), Y1: max(a.Y1, b.Y1), X2: min(a.X2, b.X2), Y2: min(a.Y2, b.Y2)}.Area()
	union := a.Area() + b.Area() - inter
	if union <= 0 {
		return 0
	}
	return float64(inter / union)
}

// livenessRow is one photo of `faced eval liveness`.
type livenessRow struct {
	File  string  `json:"file"`
	Live  bool    `json:"live"`  // the label
	Score float64 `json:"score"` // the model's live score; -1 when no face
}

type livenessReport struct {
	Model    string        `json:"model"`
	Rows     []livenessRow `json:"images"`
	Accuracy float64       `json:"accuracy"` // at the model's 0.5 boundary
	APCER    float64       `json:"apcer"`    // attacks accepted as live
	BPCER    float64       `json:"bpcer"`    // live faces rejected
	NoFace   int           `json:"no_face"`  // photos without a face: rejected (live) or refused (spoof)
	// EERThreshold is the score threshold where APCER and BPCER are
	// closest (the equal error rate, EER, is their mean there).
	EERThreshold float64 `json:"eer_threshold"`
	EER          float64 `json:"eer"`
}

// livenessThreshold is the live score the pipeline's callers accept.
const livenessThreshold = 0.5

// equalErrorRate finds the threshold where the share of spoofs at or
// above it (APCER) and of live photos below it (BPCER) are closest. A
// photo without a face (score -1) is a rejection at every threshold.
func equalErrorRate(rows []livenessRow) (thr, eer float64) {
	var live, spoof []float64
	for _, r := range rows {
		if r.Live {
			live = append(live, r.Score)
		} else {
			spoof = append(spoof, r.Score)
		}
	}
	if len(live) == 0 || len(spoof) == 0 {
		return livenessThreshold, 0
	}
	cands := append(append([]float64{livenessThreshold}, live...), spoof...)
	best := math.Inf(1)
	for _, t := range cands {
		if t < 0 {
			continue
		}
		var ap, bp float64
		for _, s := range spoof {
			if s >= t {
				ap++
			}
		}
		for _, s := range live {
			if s < t {
				bp++
			}
		}
		ap, bp = ap/float64(len(spoof)), bp/float64(len(live))
		if d := math.Abs(ap - bp); d < best || (d == best && t < thr) {
			best, thr, eer = d, t, (ap+bp)/2
		}
	}
	return thr, eer
}

// evalLiveness scores labelled photos. Labels come from the file name, as
// in the Silent-Face samples: a name containing "_T" is live, "_F" a spoof.
func evalLiveness(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("eval liveness", "", stderr)
	cfg := visionFlags(fs.FlagSet)
	imagesDir := fs.String("images", "", "folder of photos named *_T* (live) and *_F* (spoof)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *imagesDir == "" {
		return errors.New("eval liveness: --images is required")
	}
	if cfg.Liveness == "" {
		return errors.New("eval liveness: --liveness names no model")
	}
	files, err := photoFiles(*imagesDir)
	if err != nil {
		return err
	}
	cfg.Embedder = ""
	v, _, err := openForEval(ctx, *cfg)
	if err != nil {
		return err
	}
	defer v.Close()
	rep := livenessReport{Model: cfg.Liveness}
	var live, spoof, liveRejected, spoofAccepted, correct int
	for _, name := range files {
		upper := strings.ToUpper(name)
		isLive, isSpoof := strings.Contains(upper, "_T"), strings.Contains(upper, "_F")
		if isLive == isSpoof {
			continue // unlabelled
		}
		data, err := os.ReadFile(filepath.Join(*imagesDir, name))
		if err != nil {
			return err
		}
		row := livenessRow{File: name, Live: isLive, Score: -1}
		faces, err := v.Pipeline.Detect(ctx, data, face.Options{Liveness: true, Selector: face.SelectBiggest})
		if err != nil && !isBadPhoto(err) {
			return fmt.Errorf("%s: %w", name, err)
		}
		if len(faces) > 0 {
			row.Score = float64(*faces[0].Liveness)
		} else {
			rep.NoFace++
		}
		saidLive := row.Score >= livenessThreshold
		if isLive {
			live++
			if !saidLive {
				liveRejected++
			}
		} else {
			spoof++
			if saidLive {
				spoofAccepted++
			}
		}
		if saidLive == isLive {
			correct++
		}
		rep.Rows = append(rep.Rows, row)
	}
	if len(rep.Rows) == 0 {
		return fmt.Errorf("eval liveness: no labelled photos in %s", *imagesDir)
	}
	rep.Accuracy = float64(correct) / float64(len(rep.Rows))
	if spoof > 0 {
		rep.APCER = float64(spoofAccepted) / float64(spoof)
	}
	if live > 0 {
		rep.BPCER = float64(liveRejected) / float64(live)
	}
	rep.EERThreshold, rep.EER = equalErrorRate(rep.Rows)
	if *asJSON {
		return json.NewEncoder(stdout).Encode(rep)
	}
	tw := tabwriter.NewWriter(stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintf(tw, "model\t%s\n", rep.Model)
	for _, r := range rep.Rows {
		fmt.Fprintf(tw, "%s\tlabel=%s\tscore=%.3f\n", r.File, map[bool]string{true: "live", false: "spoof"}[r.Live], r.Score)
	}
	fmt.Fprintf(tw, "photos\t%d live, %d spoof; %d without a face\n", live, spoof, rep.NoFace)
	fmt.Fprintf(tw, "at threshold %.2f\taccuracy %.3f, APCER %.3f (spoofs accepted), BPCER %.3f (live rejected)\n", livenessThreshold, rep.Accuracy, rep.APCER, rep.BPCER)
	fmt.Fprintf(tw, "equal error\tEER %.3f at threshold %.4f\n", rep.EER, rep.EERThreshold)
	return tw.Flush()
}
