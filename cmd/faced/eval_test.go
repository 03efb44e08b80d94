package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/facedhq/faced/daemon"
	"github.com/facedhq/faced/internal/testenv"
	"github.com/facedhq/faced/service"
)

// verifyJSON is the documented --json output of `faced eval verify`.
type verifyJSON struct {
	Pairs          int       `json:"pairs"`
	Skipped        int       `json:"pairs_skipped"`
	Positives      int       `json:"positives"`
	Negatives      int       `json:"negatives"`
	NoFace         int       `json:"no_face"`
	Accuracy       float64   `json:"accuracy"`
	AccuracyStd    float64   `json:"accuracy_std"`
	Folds          int       `json:"folds"`
	FoldThresholds []float64 `json:"fold_thresholds"`
	TARAtFAR1e3    float64   `json:"tar_at_far_1e3"`
	AUC            float64   `json:"auc"`
	Threshold      float64   `json:"threshold"`
	Embedder       string    `json:"embedder"`
	Detector       string    `json:"detector"`
	Backend        string    `json:"backend"`
	// On the API's confidence scale; absent without a calibration.
	ThresholdConfidence *float64 `json:"threshold_confidence"`
	APIPresets          map[string]struct {
		Confidence float64 `json:"confidence"`
		Similarity float64 `json:"similarity"`
	} `json:"api_presets"`
}

var verifyKeys = []string{"pairs", "pairs_skipped", "positives", "negatives", "no_face", "accuracy", "accuracy_std",
	"folds", "fold_thresholds", "tar_at_far_1e3", "far_1e3_threshold", "auc", "threshold", "threshold_accuracy",
	"embedder", "detector", "backend"}

// TestEvalVerifyDeepface runs the verification benchmark the README
// quotes: deepface's 300 CSV pairs with the default models.
func TestEvalVerifyDeepface(t *testing.T) {
	data := testenv.DataDir(t)
	args := []string{"eval", "verify", "--pairs", filepath.Join(data, "deepface", "master.csv"), "--images", filepath.Join(data, "deepface")}
	var r verifyJSON
	decodeJSON(t, mustFaced(t, append(args, "--json")...), &r, verifyKeys...)
	t.Logf("deepface: accuracy %.4f ± %.4f, AUC %.4f, TAR@FAR1e-3 %.4f, threshold %.4f, embedder %s, detector %s",
		r.Accuracy, r.AccuracyStd, r.AUC, r.TARAtFAR1e3, r.Threshold, r.Embedder, r.Detector)

	if r.Pairs != 300 || r.Skipped != 0 || r.Positives != 38 || r.Negatives != 262 {
		t.Errorf("pairs %d (skipped %d, %d same, %d different), want 300 (0, 38, 262)", r.Pairs, r.Skipped, r.Positives, r.Negatives)
	}
	if r.NoFace != 0 {
		t.Errorf("no_face = %d, want 0: the default detector misses a face in deepface", r.NoFace)
	}
	if r.Folds != 10 || len(r.FoldThresholds) != 10 {
		t.Errorf("folds %d with %d thresholds, want 10 and 10", r.Folds, len(r.FoldThresholds))
	}
	if r.Accuracy < 0.99 {
		t.Errorf("accuracy = %.4f, want >= 0.99", r.Accuracy)
	}
	if r.AUC < 0.99 {
		t.Errorf("auc = %.4f, want >= 0.99", r.AUC)
	}
	if r.TARAtFAR1e3 < 0.9 {
		t.Errorf("tar_at_far_1e3 = %.4f, want >= 0.9", r.TARAtFAR1e3)
	}
	def := daemon.DefaultVision().Embedder
	if !strings.HasPrefix(r.Embedder, def+"@") {
		t.Errorf("embedder = %q, want %s@<sha>", r.Embedder, def)
	}
	if r.Threshold <= 0 || r.Threshold >= 1 {
		t.Errorf("threshold = %v, want a cosine similarity in (0, 1)", r.Threshold)
	}
	if r.Detector == "" || r.Backend == "" {
		t.Errorf("detector %q, backend %q: want both named", r.Detector, r.Backend)
	}

	// Issue 17: every threshold printed is named, and the one an API
	// client may pass is the confidence of the embedder's calibration.
	calib := service.Calibrations[def]
	conf := float64(calib.Confidence(float32(r.Threshold)))
	if r.ThresholdConfidence == nil || math.Abs(*r.ThresholdConfidence-conf) > 1e-6 {
		t.Errorf("threshold_confidence = %v, want %.4f (the calibration's confidence of similarity %.4f)", r.ThresholdConfidence, conf, r.Threshold)
	}
	presets := map[string]float32{"strict": calib.Strict, "medium": calib.Medium, "low": calib.Low}
	for name, sim := range presets {
		p, ok := r.APIPresets[name]
		if !ok || math.Abs(p.Confidence-float64(service.Presets[name])) > 1e-6 || math.Abs(p.Similarity-float64(sim)) > 1e-6 {
			t.Errorf("api_presets[%s] = %+v, want confidence %v (what threshold=%s applies), similarity %v", name, p, service.Presets[name], name, sim)
		}
	}

	text := mustFaced(t, args...)
	for _, want := range []string{"accuracy", "pairs", "300", def + "@",
		"confidence: the 0-1 scale the API's threshold takes",
		fmt.Sprintf("confidence %.4f (similarity %.4f): ", conf, r.Threshold),
	} {
		if !strings.Contains(text, want) {
			t.Errorf("text output lacks %q:\n%s", want, text)
		}
	}
	for name, sim := range presets {
		re := regexp.MustCompile(fmt.Sprintf(`preset %s:\s+confidence %.4f\s+\(similarity %.4f\)`, name, service.Presets[name], sim))
		if !re.MatchString(text) {
			t.Errorf("text output lacks the API preset %s as %s:\n%s", name, re, text)
		}
	}
	if strings.Contains(text, "threshold 0.") {
		t.Errorf("text output prints an unnamed threshold:\n%s", text)
	}
}

// TestEvalVerifyLFW builds a small LFW-layout set (Name/Name_0001.jpg and a
// pairs.txt of 2 folds with 2 same and 2 different pairs each) from the
// deepface photos and checks the folds of the header are the ones used.
func TestEvalVerifyLFW(t *testing.T) {
	dir := t.TempDir()
	people := map[string][]string{
		"Angelina_Jolie": {"img1.jpg", "img2.jpg", "img4.jpg"},
		"Person_B":       {"img13.jpg", "img14.jpg"}, // a Yes pair in master.csv
		"Person_C":       {"img16.jpg", "img17.jpg"}, // a Yes pair in master.csv
	}
	for name, files := range people {
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		for i, f := range files {
			b := testenv.ReadPhoto(t, "deepface/"+f)
			dst := filepath.Join(dir, name, fmt.Sprintf("%s_%04d.jpg", name, i+1))
			if err := os.WriteFile(dst, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	pairs := `2	2
Angelina_Jolie	1	2
Person_B	1	2
Angelina_Jolie	1	Person_B	1
Angelina_Jolie	2	Person_C	1
Angelina_Jolie	1	3
Person_C	1	2
Angelina_Jolie	3	Person_B	2
Person_B	1	Person_C	2
`
	pairsFile := filepath.Join(dir, "pairs.txt")
	if err := os.WriteFile(pairsFile, []byte(pairs), 0o644); err != nil {
		t.Fatal(err)
	}

	var r verifyJSON
	decodeJSON(t, mustFaced(t, "eval", "verify", "--pairs", pairsFile, "--images", dir, "--json"), &r, verifyKeys...)
	t.Logf("LFW layout: accuracy %.4f, AUC %.4f, fold thresholds %v", r.Accuracy, r.AUC, r.FoldThresholds)
	if r.Pairs != 8 || r.Positives != 4 || r.Negatives != 4 || r.Skipped != 0 || r.NoFace != 0 {
		t.Errorf("pairs %d (%d same, %d different, %d skipped, %d without face), want 8 (4, 4, 0, 0)",
			r.Pairs, r.Positives, r.Negatives, r.Skipped, r.NoFace)
	}
	if r.Folds != 2 || len(r.FoldThresholds) != 2 {
		t.Errorf("folds %d with %d thresholds, want the header's 2", r.Folds, len(r.FoldThresholds))
	}
	// Every fold's threshold is fitted on the other's four pairs; the
	// deepface scores are cleanly separated, so both folds are right.
	if r.Accuracy < 0.99 || r.AUC < 0.99 {
		t.Errorf("accuracy %.4f, auc %.4f: want both >= 0.99", r.Accuracy, r.AUC)
	}
}

func TestEvalVerifyErrors(t *testing.T) {
	data := testenv.DataDir(t)
	images := filepath.Join(data, "deepface")
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name string
		args []string
		want []string // substrings of the error
	}{
		{"missing --pairs", []string{"--images", images}, []string{"--pairs"}},
		{"missing --images", []string{"--pairs", filepath.Join(images, "master.csv")}, []string{"--images"}},
		{"pairs file not found", []string{"--pairs", filepath.Join(dir, "nope.csv"), "--images", images}, []string{"nope.csv"}},
		{"neither format", []string{"--pairs", write("prose.txt", "these are not pairs\n"), "--images", images}, []string{"line 1"}},
		{"bad CSV decision", []string{"--pairs", write("bad.csv", "file_x,file_y,Decision\nimg1.jpg,img2.jpg,Yes\nimg1.jpg,img3.jpg,Maybe\n"), "--images", images},
			[]string{"line 3", "Maybe"}},
		{"LFW pair with too few fields", []string{"--pairs", write("bad.txt", "1 1\nAngelina_Jolie 1\nA 1 B 1\n"), "--images", images},
			[]string{"line 2"}},
		{"LFW file shorter than its header", []string{"--pairs", write("short.txt", "2 1\nA 1 2\nA 1 B 1\n"), "--images", images},
			[]string{"line", "declares"}},
		{"path escaping the images folder", []string{"--pairs", write("escape.csv", "file_x,file_y,Decision\n../../etc/passwd,img1.jpg,No\n"), "--images", images},
			[]string{"line 2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := faced(t, append([]string{"eval", "verify"}, tc.args...)...)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// detectJSON is the --json output of `faced eval detect`.
type detectJSON struct {
	Images         int     `json:"images"`
	ImagesWithFace int     `json:"images_with_face"`
	Faces          int     `json:"faces"`
	Annotated      int     `json:"annotated_faces"`
	Matched        int     `json:"matched_faces"`
	Recall         float64 `json:"recall"`
	Precision      float64 `json:"precision"`
	Detector       string  `json:"detector"`
	Backend        string  `json:"backend"`
}

// TestEvalDetectAnnotated measures recall at IoU 0.5 on the hand-checked
// boxes of face/testdata/faces.csv, for the default detector and for
// BlazeFace front aligned on its keypoints.
func TestEvalDetectAnnotated(t *testing.T) {
	data := testenv.DataDir(t)
	ann := filepath.Join(testenv.RepoRoot(t), "face", "testdata", "faces.csv")
	for _, tc := range []struct {
		name      string
		flags     []string
		detector  string
		minRecall float64
	}{
		{"default", nil, daemon.DefaultVision().Detector, 1},
		{"blazeface", []string{"--detector", "blazeface-front-onnx", "--align", "keypoints"}, "blazeface-front-onnx", 0.85},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"eval", "detect", "--images", data, "--annotations", ann, "--json"}, tc.flags...)
			var r detectJSON
			decodeJSON(t, mustFaced(t, args...), &r, "images", "images_with_face", "faces", "annotated_faces", "matched_faces", "recall", "precision", "detector", "backend")
			t.Logf("%s: recall %.3f (%d of %d), precision %.3f (%d faces found in %d images)",
				r.Detector, r.Recall, r.Matched, r.Annotated, r.Precision, r.Faces, r.Images)
			if r.Detector != tc.detector {
				t.Errorf("detector = %q, want %q", r.Detector, tc.detector)
			}
			if r.Images != 4 || r.Annotated != 7 {
				t.Errorf("%d images with %d annotated faces, want faces.csv's 4 and 7", r.Images, r.Annotated)
			}
			if r.Recall < tc.minRecall {
				t.Errorf("recall = %.3f (%d of %d), want >= %.2f", r.Recall, r.Matched, r.Annotated, tc.minRecall)
			}
			if r.Precision <= 0 || r.Precision > 1 {
				t.Errorf("precision = %v, want in (0, 1]", r.Precision)
			}
		})
	}

	text := mustFaced(t, "eval", "detect", "--images", data, "--annotations", ann)
	for _, want := range []string{"recall@IoU0.5", "precision@IoU0.5", daemon.DefaultVision().Detector} {
		if !strings.Contains(text, want) {
			t.Errorf("text output lacks %q:\n%s", want, text)
		}
	}
}

// TestEvalDetectFolder runs without annotations on deepface, where every
// photo shows at least one face.
func TestEvalDetectFolder(t *testing.T) {
	data := testenv.DataDir(t)
	var r detectJSON
	decodeJSON(t, mustFaced(t, "eval", "detect", "--images", filepath.Join(data, "deepface"), "--json"), &r, "images", "images_with_face", "faces")
	t.Logf("deepface: face found in %d of %d photos, %d faces", r.ImagesWithFace, r.Images, r.Faces)
	if r.Images < 60 {
		t.Errorf("images = %d, want deepface's 64 photos", r.Images)
	}
	if r.ImagesWithFace != r.Images {
		t.Errorf("a face was found in %d of %d photos, want all", r.ImagesWithFace, r.Images)
	}
	if r.Faces < r.Images {
		t.Errorf("faces = %d, fewer than photos (%d)", r.Faces, r.Images)
	}
	if r.Annotated != 0 || r.Recall != 0 {
		t.Errorf("annotation metrics without annotations: %+v", r)
	}
}

func TestEvalDetectErrors(t *testing.T) {
	if _, _, err := faced(t, "eval", "detect"); err == nil || !strings.Contains(err.Error(), "--images") {
		t.Errorf("no --images: err = %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.csv")
	if err := os.WriteFile(bad, []byte("file,x1,y1,x2,y2\na.jpg,1,2,3,4\nb.jpg,1,two,3,4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := faced(t, "eval", "detect", "--images", testenv.DataDir(t), "--annotations", bad)
	if err == nil || !strings.Contains(err.Error(), "bad.csv:3") {
		t.Errorf("bad annotations: err = %v, want one naming bad.csv:3", err)
	}
}

// TestEvalLiveness scores the Silent-Face samples: one live photo, two
// spoofs, all classified right at 0.5.
func TestEvalLiveness(t *testing.T) {
	data := testenv.DataDir(t)
	var r struct {
		Model string `json:"model"`
		Rows  []struct {
			File  string  `json:"file"`
			Live  bool    `json:"live"`
			Score float64 `json:"score"`
		} `json:"images"`
		Accuracy float64 `json:"accuracy"`
		APCER    float64 `json:"apcer"`
		BPCER    float64 `json:"bpcer"`
	}
	decodeJSON(t, mustFaced(t, "eval", "liveness", "--images", filepath.Join(data, "antispoof"), "--json"), &r,
		"model", "images", "accuracy", "apcer", "bpcer")
	if len(r.Rows) != 3 {
		t.Fatalf("%d rows, want 3: %+v", len(r.Rows), r.Rows)
	}
	want := map[string]bool{"image_T1.jpg": true, "image_F1.jpg": false, "image_F2.jpg": false}
	for _, row := range r.Rows {
		t.Logf("%s (%s): live score %.5f", row.File, map[bool]string{true: "live", false: "spoof"}[row.Live], row.Score)
		live, ok := want[row.File]
		if !ok || row.Live != live {
			t.Errorf("row %+v: unexpected file or label", row)
		}
		if row.Score < 0 || row.Score > 1 {
			t.Errorf("%s: score %v, want a probability (-1 means no face found)", row.File, row.Score)
		}
	}
	if r.Accuracy != 1 || r.APCER != 0 || r.BPCER != 0 {
		t.Errorf("accuracy %v, APCER %v, BPCER %v; want 1, 0, 0", r.Accuracy, r.APCER, r.BPCER)
	}
	if r.Model != "minifasnet-3class" {
		t.Errorf("model = %q", r.Model)
	}

	if _, _, err := faced(t, "eval", "liveness", "--images", filepath.Join(data, "antispoof"), "--liveness", ""); err == nil {
		t.Error("--liveness \"\": no error")
	}
	// A folder without *_T* / *_F* photos has nothing to score.
	if _, _, err := faced(t, "eval", "liveness", "--images", t.TempDir()); err == nil || !strings.Contains(err.Error(), "no labelled photos") {
		t.Errorf("empty folder: err = %v, want no labelled photos", err)
	}
}
