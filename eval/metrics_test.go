package eval

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

const eps = 1e-12

func near(a, b float64) bool { return math.Abs(a-b) <= eps }

// labelled builds scores and labels from genuine and impostor scores.
func labelled(pos, neg []float64) ([]float64, []bool) {
	s := append(append([]float64{}, pos...), neg...)
	y := make([]bool, len(s))
	for i := range pos {
		y[i] = true
	}
	return s, y
}

func TestBestThreshold(t *testing.T) {
	tests := []struct {
		name     string
		pos, neg []float64
		thr, acc float64
	}{
		{"separable: midpoint of the gap", []float64{0.9, 0.8, 0.7}, []float64{0.1, 0.2, 0.3}, 0.5, 1},
		// Accept-all and reject-all tie at 3/6; the first range wins and
		// accept-all is clipped to the lowest score.
		{"inverted", []float64{0.1, 0.2, 0.3}, []float64{0.7, 0.8, 0.9}, 0.1, 0.5},
		// Raising the threshold past 0.5 trades one right for one wrong, so
		// (0.1, 0.5] and (0.5, 0.9] are one best range: its middle is 0.5.
		{"tied range: middle", []float64{0.5, 0.9}, []float64{0.1, 0.5}, 0.5, 0.75},
		// Two separate best ranges, (0.2, 0.3] and (0.5, 0.8]: the wider wins.
		{"widest range wins", []float64{0.8, 0.3}, []float64{0.5, 0.2}, 0.65, 0.75},
		{"all equal", []float64{0.4, 0.4}, []float64{0.4, 0.4}, 0.4, 0.5},
		{"only genuine: accept all", []float64{0.3, 0.6}, nil, 0.3, 1},
		{"only impostors: reject all", nil, []float64{0.3, 0.6}, math.Nextafter(0.6, 2), 1},
		{"adjacent floats", []float64{math.Nextafter(1, 2)}, []float64{1}, math.Nextafter(1, 2), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, y := labelled(tt.pos, tt.neg)
			thr, acc := BestThreshold(s, y)
			if !near(thr, tt.thr) || !near(acc, tt.acc) {
				t.Errorf("BestThreshold = %v, %v; want %v, %v", thr, acc, tt.thr, tt.acc)
			}
			// Exactly, not within eps: the threshold must earn its accuracy.
			if got := accuracyAt(s, y, thr); got != acc {
				t.Errorf("threshold %v scores %v, not the %v reported", thr, got, acc)
			}
		})
	}
}

// accuracyAt is the accuracy of one threshold, the brute-force reference.
func accuracyAt(s []float64, y []bool, thr float64) float64 {
	right := 0
	for i := range s {
		if (s[i] >= thr) == y[i] {
			right++
		}
	}
	return float64(right) / float64(len(s))
}

// randomScores draws scores on a coarse grid so that ties are common.
func randomScores(r *rand.Rand, n int) ([]float64, []bool) {
	s, y := make([]float64, n), make([]bool, n)
	for i := range s {
		y[i] = r.IntN(3) == 0
		mu := 0.3
		if y[i] {
			mu = 0.6
		}
		s[i] = math.Round((mu+0.2*r.NormFloat64())*20) / 20
	}
	return s, y
}

// BestThreshold must match a brute-force search over every score as a
// threshold (plus reject-all), and its threshold must achieve its accuracy.
func TestBestThresholdBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := range 300 {
		s, y := randomScores(r, 1+r.IntN(40))
		thr, acc := BestThreshold(s, y)
		best := accuracyAt(s, y, math.Inf(1))
		for _, c := range s {
			best = max(best, accuracyAt(s, y, c))
		}
		if !near(acc, best) || !near(accuracyAt(s, y, thr), best) {
			t.Fatalf("trial %d: scores %v labels %v: BestThreshold = %v, %v (achieves %v); brute force %v",
				trial, s, y, thr, acc, accuracyAt(s, y, thr), best)
		}
	}
}

func TestKFoldAccuracy(t *testing.T) {
	// Fold 0: genuine 0.9, 0.6; impostors 0.4, 0.1.
	// Fold 1: genuine 0.8, 0.3; impostors 0.5, 0.2.
	// Testing fold 0, fold 1 gives best ranges (0.2, 0.3] and (0.5, 0.8]:
	// the wider one's middle 0.65 gets 0.9, 0.4, 0.1 right: 3/4.
	// Testing fold 1, fold 0 is separable at 0.5, which gets 0.8 and 0.2
	// right but rejects 0.3 and accepts 0.5: 2/4.
	s := []float64{0.9, 0.6, 0.4, 0.1, 0.8, 0.3, 0.5, 0.2}
	y := []bool{true, true, false, false, true, true, false, false}
	fold := []int{0, 0, 0, 0, 1, 1, 1, 1}
	mean, std, thr := KFoldAccuracy(s, y, fold, 2)
	if !near(mean, 0.625) || !near(std, math.Sqrt(2*0.125*0.125)) {
		t.Errorf("mean, std = %v, %v; want 0.625, %v", mean, std, math.Sqrt(2*0.125*0.125))
	}
	if len(thr) != 2 || !near(thr[0], 0.65) || !near(thr[1], 0.5) {
		t.Errorf("thresholds = %v, want [0.65 0.5]", thr)
	}

	// Separable data is classified perfectly in every fold.
	r := rand.New(rand.NewPCG(3, 4))
	n := 100
	s, y, fold = make([]float64, n), make([]bool, n), make([]int, n)
	for i := range n {
		y[i] = i%2 == 0
		s[i] = r.Float64() * 0.4
		if y[i] {
			s[i] += 0.5
		}
		fold[i] = i % 10
	}
	if mean, std, _ := KFoldAccuracy(s, y, fold, 10); mean != 1 || std != 0 {
		t.Errorf("separable: mean, std = %v, %v; want 1, 0", mean, std)
	}
}

func TestKFoldAccuracyInvalid(t *testing.T) {
	s := []float64{0.9, 0.1, 0.8, 0.2}
	y := []bool{true, false, true, false}
	tests := []struct {
		name string
		s    []float64
		fold []int
		k    int
	}{
		{"k 1", s, []int{0, 0, 0, 0}, 1},
		{"fold out of range", s, []int{0, 1, 2, 0}, 2},
		{"negative fold", s, []int{0, 1, -1, 0}, 2},
		{"empty fold", s, []int{0, 0, 0, 0}, 2},
		{"length mismatch", s, []int{0, 1}, 2},
		{"NaN", []float64{0.9, math.NaN(), 0.8, 0.2}, []int{0, 1, 0, 1}, 2},
	}
	for _, tt := range tests {
		mean, std, thr := KFoldAccuracy(tt.s, y, tt.fold, tt.k)
		if !math.IsNaN(mean) || !math.IsNaN(std) || thr != nil {
			t.Errorf("%s: got %v, %v, %v; want NaN, NaN, nil", tt.name, mean, std, thr)
		}
	}
}

func TestAUC(t *testing.T) {
	tests := []struct {
		name     string
		pos, neg []float64
		want     float64
	}{
		{"separable", []float64{0.9, 0.8, 0.7}, []float64{0.1, 0.2, 0.3}, 1},
		{"inverted", []float64{0.1, 0.2, 0.3}, []float64{0.7, 0.8, 0.9}, 0},
		{"all tied", []float64{0.5, 0.5}, []float64{0.5, 0.5, 0.5}, 0.5},
		// Pairings: 0.8 beats both (2), 0.4 ties 0.4 (1/2) and beats 0.2 (1):
		// 3.5 of 4.
		{"mixed", []float64{0.8, 0.4}, []float64{0.4, 0.2}, 0.875},
	}
	for _, tt := range tests {
		s, y := labelled(tt.pos, tt.neg)
		if got := AUC(s, y); got != tt.want {
			t.Errorf("%s: AUC = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestAUCBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for trial := range 200 {
		s, y := randomScores(r, 2+r.IntN(50))
		var u float64
		var p, n int
		for i := range s {
			if !y[i] {
				n++
				continue
			}
			p++
			for j := range s {
				switch {
				case y[j]:
				case s[i] > s[j]:
					u++
				case s[i] == s[j]:
					u += 0.5
				}
			}
		}
		got := AUC(s, y)
		if p == 0 || n == 0 {
			if !math.IsNaN(got) {
				t.Fatalf("trial %d: one class only, AUC = %v, want NaN", trial, got)
			}
			continue
		}
		if want := u / float64(p*n); !near(got, want) {
			t.Fatalf("trial %d: AUC = %v, brute force %v", trial, got, want)
		}
	}
}

func TestTARAtFAR(t *testing.T) {
	// Ten impostors, one of them scoring above every genuine pair.
	pos := []float64{0.9, 0.8, 0.7, 0.6}
	neg := []float64{0.95, 0.1, 0.2, 0.3, 0.25, 0.15, 0.05, 0.0, 0.12, 0.22}
	tests := []struct {
		name     string
		far      float64
		tar, thr float64
	}{
		// 1e-3 of 10 impostors allows none: the threshold must clear 0.95.
		{"FAR 1e-3, no false accept", 1e-3, 0, math.Nextafter(0.95, 2)},
		{"FAR 0", 0, 0, math.Nextafter(0.95, 2)},
		// 0.1 allows one: the threshold clears the second highest, 0.3.
		{"FAR 0.1, one false accept", 0.1, 1, math.Nextafter(0.3, 2)},
		{"FAR 0.199 still one", 0.199, 1, math.Nextafter(0.3, 2)},
		{"FAR 1 accepts everything", 1, 1, 0},
	}
	s, y := labelled(pos, neg)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tar, thr := TARAtFAR(s, y, tt.far)
			if tar != tt.tar || thr != tt.thr {
				t.Errorf("TARAtFAR = %v, %v; want %v, %v", tar, thr, tt.tar, tt.thr)
			}
		})
	}
}

func TestFARThreshold(t *testing.T) {
	ninety := make([]float64, 90) // 0.01 ... 0.90
	for i := range ninety {
		ninety[i] = float64(i+1) / 100
	}
	tests := []struct {
		name string
		neg  []float64
		far  float64
		want float64
	}{
		{"below resolution: above the max", []float64{0.2, 0.7, 0.1}, 1e-5, math.Nextafter(0.7, 2)},
		{"exact product", []float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0}, 0.3, math.Nextafter(0.7, 2)},
		// One false accept allowed, but 0.5 is tied twice: both rejected.
		{"ties", []float64{0.5, 0.5, 0.1}, 0.34, math.Nextafter(0.5, 2)},
		// 0.7*90 is 62.99999999999999 in float64; 63 false accepts are allowed.
		{"rounding below an integer", ninety, 0.7, math.Nextafter(0.27, 2)},
		{"far above 1", []float64{0.5, 0.2}, 5, 0.2},
		{"empty", nil, 0.1, math.NaN()},
		{"negative far", []float64{0.5}, -0.1, math.NaN()},
		{"NaN far", []float64{0.5}, math.NaN(), math.NaN()},
		{"NaN score", []float64{0.5, math.NaN()}, 0.1, math.NaN()},
		{"Inf score", []float64{0.5, math.Inf(1)}, 0.1, math.NaN()},
	}
	for _, tt := range tests {
		got := FARThreshold(tt.neg, tt.far)
		if got != tt.want && !(math.IsNaN(got) && math.IsNaN(tt.want)) {
			t.Errorf("%s: FARThreshold = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// The threshold must hold the FAR, and one float64 lower must break it:
// "smallest threshold" exactly.
func TestFARThresholdMinimal(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for trial := range 300 {
		neg, _ := randomScores(r, 1+r.IntN(60))
		far := []float64{0, 1e-3, 0.01, 0.05, 0.1, 0.5}[r.IntN(6)]
		thr := FARThreshold(neg, far)
		fa := func(t float64) int {
			c := 0
			for _, s := range neg {
				if s >= t {
					c++
				}
			}
			return c
		}
		limit := far * float64(len(neg))
		if float64(fa(thr)) > limit+1e-9 || float64(fa(math.Nextafter(thr, -2))) <= limit+1e-9 {
			t.Fatalf("trial %d: far %v, impostors %v: threshold %v accepts %d, one ulp lower %d",
				trial, far, neg, thr, fa(thr), fa(math.Nextafter(thr, -2)))
		}
	}
}

func TestMetricsDegenerate(t *testing.T) {
	tests := []struct {
		name string
		s    []float64
		y    []bool
	}{
		{"empty", nil, nil},
		{"mismatch", []float64{0.1, 0.2}, []bool{true}},
		{"NaN", []float64{0.1, math.NaN()}, []bool{true, false}},
		{"Inf", []float64{math.Inf(-1), 0.2}, []bool{true, false}},
	}
	for _, tt := range tests {
		thr, acc := BestThreshold(tt.s, tt.y)
		tar, tthr := TARAtFAR(tt.s, tt.y, 1e-3)
		for _, v := range []float64{thr, acc, tar, tthr, AUC(tt.s, tt.y)} {
			if !math.IsNaN(v) {
				t.Errorf("%s: got %v, want NaN from every metric", tt.name, v)
			}
		}
	}
	// One class only: AUC and TAR are undefined.
	s, y := labelled([]float64{0.5, 0.6}, nil)
	if v := AUC(s, y); !math.IsNaN(v) {
		t.Errorf("AUC without impostors = %v, want NaN", v)
	}
	if v, _ := TARAtFAR(s, y, 1e-3); !math.IsNaN(v) {
		t.Errorf("TAR without impostors = %v, want NaN", v)
	}
	s, y = labelled(nil, []float64{0.5, 0.6})
	if v, _ := TARAtFAR(s, y, 1e-3); !math.IsNaN(v) {
		t.Errorf("TAR without genuine pairs = %v, want NaN", v)
	}
}

// run builds a Run of n pairs in 10 folds with separable scores.
func run(n int) Run {
	var r Run
	for i := range n {
		same := i%3 == 0
		s := 0.1 + 0.001*float64(i)
		if same {
			s += 0.5
		}
		r.Pairs = append(r.Pairs, Pair{A: "a.jpg", B: "b.jpg", Same: same, Fold: i % 10})
		r.Scores = append(r.Scores, s)
	}
	r.Folds = 10
	return r
}

func TestSummarize(t *testing.T) {
	in := run(60)
	in.Skipped, in.NoFace, in.Embedder, in.Detector = 2, 1, "arcface", "scrfd"
	rep, err := Summarize(in)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Pairs != 60 || rep.Positives != 20 || rep.Negatives != 40 || rep.Folds != 10 || rep.Skipped != 2 || rep.NoFace != 1 {
		t.Errorf("counts: %+v", rep)
	}
	if rep.Accuracy != 1 || rep.AccuracyStd != 0 || rep.AUC != 1 || rep.ThresholdAcc != 1 || rep.TARAtFAR1e3 != 1 || len(rep.FoldThresholds) != 10 {
		t.Errorf("separable scores: %+v", rep)
	}
	// Highest impostor 0.1+0.059, lowest genuine 0.6: midpoint.
	if want := (0.159 + 0.6) / 2; math.Abs(rep.Threshold-want) > 1e-9 {
		t.Errorf("threshold %v, want %v", rep.Threshold, want)
	}

	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"pairs", "no_face", "accuracy", "accuracy_std", "folds", "tar_at_far_1e3",
		"far_1e3_threshold", "auc", "threshold", "threshold_accuracy", "embedder", "detector", "backend"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, b)
		}
	}

	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"pairs", "60 (20 same person, 40 different; 2 skipped)", "100.00% ± 0.00% (10-fold",
		"TAR @ FAR 1e-3", "only 40 impostor pairs: no false accept allowed", "ROC AUC", "1.0000", "arcface", "backend",
		// Without a calibration no number may pass for a confidence.
		"has no calibration", fmt.Sprintf("similarity %.4f: 100.00%% on all pairs", rep.Threshold)} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
	if strings.Contains(text.String(), "confidence 0") {
		t.Errorf("text without a calibration prints a confidence:\n%s", text.String())
	}

	// With one, every threshold reads as the confidence first, then the
	// similarity, each named.
	rep.Confidence = func(sim float64) float64 { return (sim + 1) / 2 }
	text.Reset()
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"confidence: the 0-1 scale the API's threshold takes",
		fmt.Sprintf("confidence %.4f (similarity %.4f): 100.00%% on all pairs", (rep.Threshold+1)/2, rep.Threshold),
		fmt.Sprintf("at confidence %.4f (similarity %.4f)", (rep.FAR1e3Threshold+1)/2, rep.FAR1e3Threshold),
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
	if strings.Contains(text.String(), "no calibration") {
		t.Errorf("text with a calibration says there is none:\n%s", text.String())
	}
}

// A single-fold file (LFW's pairsDevTest.txt) is re-split into 10 folds.
func TestSummarizeOneFold(t *testing.T) {
	in := run(40)
	for i := range in.Pairs {
		in.Pairs[i].Fold = 0
	}
	in.Folds = 1
	rep, err := Summarize(in)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Folds != DefaultFolds || len(rep.FoldThresholds) != DefaultFolds || rep.Accuracy != 1 {
		t.Errorf("got %+v", rep)
	}
}

func TestSummarizeErrors(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Run)
		want   string
	}{
		{"no pairs", func(r *Run) { *r = Run{Folds: 10} }, "eval: no pairs were scored"},
		{"score count", func(r *Run) { r.Scores = r.Scores[1:] }, "eval: 29 scores for 30 pairs"},
		{"NaN score", func(r *Run) { r.Scores[4] = math.NaN() }, "eval: pair 5 (a.jpg, b.jpg): score NaN is not a finite number"},
		{"no genuine", func(r *Run) {
			for i := range r.Pairs {
				r.Pairs[i].Same = false
			}
		}, "eval: 0 same-person and 30 different-person pairs scored"},
		{"fold out of range", func(r *Run) { r.Pairs[2].Fold = 10 }, "eval: pair 3 (a.jpg, b.jpg): fold 10 outside 0..9"},
		{"empty fold", func(r *Run) {
			for i := range r.Pairs {
				if r.Pairs[i].Fold == 3 {
					r.Pairs[i].Fold = 4
				}
			}
		}, "eval: fold 4 of 10 has no scored pairs"},
		{"overflowing threshold", func(r *Run) { r.Scores[1] = math.MaxFloat64 }, "eval: scores too extreme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := run(30)
			tt.modify(&in)
			_, err := Summarize(in)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("err = %v, want prefix %q", err, tt.want)
			}
		})
	}
}
