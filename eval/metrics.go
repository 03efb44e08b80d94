package eval

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"text/tabwriter"
)

// The metric functions keep the plain signatures the CLI and later
// calibration code want, and return NaN for inputs on which the metric is
// undefined (empty or mismatched slices, non-finite scores, a missing
// class). Summarize checks its input first and turns each of those cases
// into an error naming it, so NaN never reaches a report.

// group is one distinct score value and how many pairs of each kind have it.
type group struct {
	v        float64
	pos, neg int
}

// groupScores sorts the scores and merges equal values, the form every
// threshold sweep below works on. It reports false when the input is
// unusable: empty, mismatched, or holding NaN or ±Inf (an infinite score
// has no midpoint with its neighbours and cannot be written as JSON).
func groupScores(scores []float64, same []bool) (gs []group, pos, neg int, ok bool) {
	if len(scores) == 0 || len(scores) != len(same) {
		return nil, 0, 0, false
	}
	idx := make([]int, len(scores))
	for i, s := range scores {
		if math.IsNaN(s) || math.IsInf(s, 0) {
			return nil, 0, 0, false
		}
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		if scores[a] < scores[b] {
			return -1
		}
		if scores[a] > scores[b] {
			return 1
		}
		return 0
	})
	for _, i := range idx {
		// -0 == +0, so both land in one group, as they should.
		if len(gs) == 0 || gs[len(gs)-1].v != scores[i] {
			gs = append(gs, group{v: scores[i]})
		}
		if same[i] {
			gs[len(gs)-1].pos++
			pos++
		} else {
			gs[len(gs)-1].neg++
			neg++
		}
	}
	return gs, pos, neg, true
}

// BestThreshold returns the threshold that classifies the most pairs
// correctly (a pair is "same" when its score is >= thr) and that accuracy.
//
// With distinct scores v0 < v1 < ... < v(m-1), every threshold in the
// interval (v(c-1), v(c)] makes the same decisions, so it is enough to try
// the m+1 intervals: accept everything, reject everything, and the m-1
// between neighbouring scores. One sweep over the sorted scores counts the
// correct decisions of each, which makes the search O(n log n).
//
// Several intervals may tie. Neighbouring tied intervals form one range of
// equally good thresholds (it happens when a score value is shared by as
// many genuine as impostor pairs); the threshold returned is the middle of
// the widest such range, the first (lowest) one when they are equally wide,
// because the middle is the choice least likely to flip decisions on new
// pairs. A single interval's middle is the midpoint of two neighbouring
// scores. Ranges open towards -Inf or +Inf are clipped to the lowest or
// highest score first, so the answer is always finite: accepting everything
// gives v0, rejecting everything the next float64 above v(m-1).
//
// It returns NaN, NaN when scores is empty, the slices differ in length or
// a score is NaN or infinite. One kind of pair alone is fine: the answer
// then accepts or rejects everything.
func BestThreshold(scores []float64, same []bool) (thr, acc float64) {
	gs, pos, _, ok := groupScores(scores, same)
	if !ok {
		return math.NaN(), math.NaN()
	}
	m := len(gs)
	// correct[c] counts right decisions for thresholds in interval c, where
	// interval 0 accepts every pair and interval m rejects every pair.
	correct := make([]int, m+1)
	correct[0] = pos
	best := pos
	for c := 1; c <= m; c++ {
		// Raising the threshold past v(c-1) rejects those pairs: the
		// impostors become right and the genuine ones wrong.
		correct[c] = correct[c-1] + gs[c-1].neg - gs[c-1].pos
		best = max(best, correct[c])
	}

	bestSpan := math.Inf(-1)
	for i := 0; i <= m; {
		if correct[i] != best {
			i++
			continue
		}
		j := i
		for j+1 <= m && correct[j+1] == best {
			j++
		}
		// Intervals i..j make up the range (v(i-1), v(j)], clipped to
		// [v0, v(m-1)].
		lo, hi := gs[0].v, gs[m-1].v
		if i > 0 {
			lo = gs[i-1].v
		}
		if j < m {
			hi = gs[j].v
		}
		if span := hi - lo; span > bestSpan {
			bestSpan = span
			// Halving first cannot overflow, and the sum stays <= hi.
			thr = lo/2 + hi/2
			if i > 0 && thr <= lo {
				// lo and hi are adjacent floats (or the range is the
				// reject-everything one): the midpoint rounded onto lo,
				// which would accept pairs scoring lo.
				if j < m {
					thr = hi
				} else {
					thr = math.Nextafter(lo, math.Inf(1))
				}
			}
		}
		i = j + 1
	}
	return thr, float64(best) / float64(len(scores))
}

// KFoldAccuracy runs LFW's cross-validation: for each fold f in 0..k-1 the
// threshold is BestThreshold over the pairs of the other folds, and the
// accuracy is measured on the pairs of fold f. It returns the mean of the k
// accuracies, their sample standard deviation (divisor k-1, as LFW
// prescribes), and the threshold used for each fold.
//
// It returns NaN, NaN, nil when k < 2, a fold number is outside 0..k-1, a
// fold has no pairs, the slices differ in length or a score is NaN or
// infinite.
func KFoldAccuracy(scores []float64, same []bool, fold []int, k int) (mean, std float64, thresholds []float64) {
	nan := math.NaN()
	if k < 2 || len(fold) != len(scores) {
		return nan, nan, nil
	}
	if _, _, _, ok := groupScores(scores, same); !ok {
		return nan, nan, nil
	}
	size := make([]int, k)
	for _, f := range fold {
		if f < 0 || f >= k {
			return nan, nan, nil
		}
		size[f]++
	}
	if slices.Contains(size, 0) {
		return nan, nan, nil
	}

	accs := make([]float64, k)
	thresholds = make([]float64, k)
	trainS := make([]float64, 0, len(scores))
	trainY := make([]bool, 0, len(scores))
	for f := range k {
		trainS, trainY = trainS[:0], trainY[:0]
		for i, s := range scores {
			if fold[i] != f {
				trainS = append(trainS, s)
				trainY = append(trainY, same[i])
			}
		}
		thr, _ := BestThreshold(trainS, trainY)
		right := 0
		for i, s := range scores {
			if fold[i] == f && (s >= thr) == same[i] {
				right++
			}
		}
		thresholds[f] = thr
		accs[f] = float64(right) / float64(size[f])
		mean += accs[f]
	}
	mean /= float64(k)
	for _, a := range accs {
		std += (a - mean) * (a - mean)
	}
	std = math.Sqrt(std / float64(k-1))
	return mean, std, thresholds
}

// allowedFalseAccepts is how many of n impostor pairs may be accepted at
// the given FAR: floor(far*n). The relative slack, far above float64
// rounding (1e-16) and far below any meaningful FAR step, keeps products
// such as 0.7*90 = 62.99999999999999 from losing a false accept.
func allowedFalseAccepts(far float64, n int) int {
	a := math.Floor(far * float64(n) * (1 + 1e-12))
	if a >= float64(n) {
		return n
	}
	return int(a)
}

// FARThreshold returns the lowest threshold at which at most a fraction far
// of the impostor scores negScores are accepted (score >= threshold). That
// is the next float64 above the (A+1)-th highest impostor score, where
// A = floor(far*N) is the number of false accepts allowed among N
// impostors: a threshold just at that score would accept A+1 of them.
//
// A FAR is only resolved to 1/N. When far < 1/N no false accept is allowed
// and all the data can say is "above the highest impostor score": the
// function then returns the next float64 above the maximum, whatever far
// is. Presets calibrated at FAR 1e-5 need well over 100,000 impostor pairs
// to mean more than that. When far >= 1 every impostor may be accepted and
// it returns the lowest impostor score.
//
// It returns NaN when negScores is empty or holds NaN or ±Inf, or far is
// negative or NaN.
func FARThreshold(negScores []float64, far float64) float64 {
	if len(negScores) == 0 || math.IsNaN(far) || far < 0 {
		return math.NaN()
	}
	s := slices.Clone(negScores)
	for _, v := range s {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return math.NaN()
		}
	}
	slices.Sort(s)
	slices.Reverse(s)
	a := allowedFalseAccepts(far, len(s))
	if a >= len(s) {
		return s[len(s)-1]
	}
	// Ties with s[a] are rejected too, so fewer than a impostors may be
	// accepted: no threshold can separate tied scores.
	return math.Nextafter(s[a], math.Inf(1))
}

// TARAtFAR returns the true-accept rate (fraction of genuine pairs scoring
// >= thr) at thr = FARThreshold of the impostor scores: the smallest
// threshold at which the fraction of impostor pairs scoring >= thr is at
// most far. With fewer than 1/far impostors that means none accepted (see
// FARThreshold).
//
// It returns NaN, NaN when there are no genuine or no impostor pairs, the
// slices differ in length, a score is NaN or infinite, or far is negative
// or NaN.
func TARAtFAR(scores []float64, same []bool, far float64) (tar, thr float64) {
	_, pos, neg, ok := groupScores(scores, same)
	if !ok || pos == 0 || neg == 0 {
		return math.NaN(), math.NaN()
	}
	negs := make([]float64, 0, neg)
	for i, s := range scores {
		if !same[i] {
			negs = append(negs, s)
		}
	}
	thr = FARThreshold(negs, far)
	if math.IsNaN(thr) {
		return math.NaN(), math.NaN()
	}
	acc := 0
	for i, s := range scores {
		if same[i] && s >= thr {
			acc++
		}
	}
	return float64(acc) / float64(pos), thr
}

// AUC returns the area under the ROC curve: the Mann–Whitney U statistic
// divided by P*N, i.e. the fraction of (genuine, impostor) pairings in
// which the genuine pair scores higher, a tie counting one half. It is
// computed exactly in integers over the sorted scores, O(n log n). It
// returns NaN when there are no genuine or no impostor pairs, the slices
// differ in length or a score is NaN or infinite.
func AUC(scores []float64, same []bool) float64 {
	gs, pos, neg, ok := groupScores(scores, same)
	if !ok || pos == 0 || neg == 0 {
		return math.NaN()
	}
	// Twice U, so ties (worth one half) stay integral.
	var u2 uint64
	below := 0 // impostors scoring lower than the current group
	for _, g := range gs {
		u2 += uint64(g.pos) * uint64(2*below+g.neg)
		below += g.neg
	}
	return float64(u2) / (2 * float64(pos) * float64(neg))
}

// ReportFAR is the false-accept rate Report's TAR is measured at.
const ReportFAR = 1e-3

// Run is what `faced eval verify` measured, the input of Summarize.
type Run struct {
	// Pairs are the pairs that were scored, with their folds as ParsePairs
	// gave them; Scores[i] is the similarity of Pairs[i].
	Pairs  []Pair
	Scores []float64
	// Folds is the fold count from ParsePairs. Below 2 (LFW's single-fold
	// development files) the pairs are re-split by StratifiedFolds into
	// DefaultFolds, since one fold cannot be cross-validated.
	Folds int
	// Skipped counts pairs left out of Pairs because an image had no face
	// or could not be read; NoFace counts distinct images with no face.
	Skipped, NoFace int
	// Embedder, Detector and Backend name what produced the scores.
	Embedder, Detector, Backend string
}

// Report is the result of `faced eval verify`; its JSON form is the
// command's --json output.
type Report struct {
	Pairs     int `json:"pairs"`         // pairs scored
	Skipped   int `json:"pairs_skipped"` // pairs not scored (no face, unreadable image)
	Positives int `json:"positives"`     // same-person pairs scored
	Negatives int `json:"negatives"`     // different-person pairs scored
	NoFace    int `json:"no_face"`       // distinct images with no face found

	Accuracy       float64   `json:"accuracy"`        // mean k-fold accuracy, 0..1
	AccuracyStd    float64   `json:"accuracy_std"`    // sample std of the fold accuracies
	Folds          int       `json:"folds"`           // k
	FoldThresholds []float64 `json:"fold_thresholds"` // threshold fitted for each held-out fold

	TARAtFAR1e3     float64 `json:"tar_at_far_1e3"`     // genuine pairs accepted at FAR 1e-3, 0..1
	FAR1e3Threshold float64 `json:"far_1e3_threshold"`  // threshold giving FAR <= 1e-3
	AUC             float64 `json:"auc"`                // ROC area, 0..1
	Threshold       float64 `json:"threshold"`          // best threshold over all pairs
	ThresholdAcc    float64 `json:"threshold_accuracy"` // its (optimistic) accuracy on all pairs

	// Impostors is the normal fit of the different-person scores and
	// Presets the strict/medium/low thresholds calibrated from it (see
	// Calibrate).
	Impostors ImpostorFit            `json:"impostors"`
	Presets   map[string]Calibration `json:"presets"`

	Embedder string `json:"embedder"`
	Detector string `json:"detector"`
	Backend  string `json:"backend"`

	// Confidence maps a similarity threshold to the 0–1 confidence the
	// API's threshold takes (the embedder's service.Calibration), so that
	// WriteText prints every threshold on both scales, named. Nil when the
	// embedder has no calibration: WriteText then says so, and that none
	// of its numbers may be passed to the API as a threshold.
	Confidence func(similarity float64) float64 `json:"-"`
}

// threshold formats a similarity threshold for people: "confidence C
// (similarity S)", the scale the API takes first.
func (r Report) threshold(sim float64) string {
	if r.Confidence == nil {
		return fmt.Sprintf("similarity %.4f", sim)
	}
	return fmt.Sprintf("confidence %.4f (similarity %.4f)", r.Confidence(sim), sim)
}

// Summarize computes every metric of the report, or says why the run
// cannot be summarized: no pairs, a non-finite score, no pairs of one kind,
// a fold number out of range or a fold left without pairs.
func Summarize(run Run) (Report, error) {
	n := len(run.Pairs)
	if n == 0 {
		return Report{}, errors.New("eval: no pairs were scored")
	}
	if len(run.Scores) != n {
		return Report{}, fmt.Errorf("eval: %d scores for %d pairs", len(run.Scores), n)
	}
	r := Report{
		Pairs: n, Skipped: run.Skipped, NoFace: run.NoFace,
		Embedder: run.Embedder, Detector: run.Detector, Backend: run.Backend,
	}
	same := make([]bool, n)
	fold := make([]int, n)
	for i, p := range run.Pairs {
		if s := run.Scores[i]; math.IsNaN(s) || math.IsInf(s, 0) {
			return Report{}, fmt.Errorf("eval: pair %d (%s, %s): score %v is not a finite number", i+1, p.A, p.B, s)
		}
		same[i], fold[i] = p.Same, p.Fold
		if p.Same {
			r.Positives++
		} else {
			r.Negatives++
		}
	}
	if r.Positives == 0 || r.Negatives == 0 {
		return Report{}, fmt.Errorf("eval: %d same-person and %d different-person pairs scored: accuracy, TAR and AUC need both", r.Positives, r.Negatives)
	}

	r.Folds = run.Folds
	if r.Folds < 2 {
		r.Folds = DefaultFolds
		fold = StratifiedFolds(same, r.Folds)
	}
	size := make([]int, r.Folds)
	for i, f := range fold {
		if f < 0 || f >= r.Folds {
			return Report{}, fmt.Errorf("eval: pair %d (%s, %s): fold %d outside 0..%d", i+1, run.Pairs[i].A, run.Pairs[i].B, f, r.Folds-1)
		}
		size[f]++
	}
	if f := slices.Index(size, 0); f >= 0 {
		return Report{}, fmt.Errorf("eval: fold %d of %d has no scored pairs, so it cannot be tested", f+1, r.Folds)
	}

	r.Accuracy, r.AccuracyStd, r.FoldThresholds = KFoldAccuracy(run.Scores, same, fold, r.Folds)
	r.TARAtFAR1e3, r.FAR1e3Threshold = TARAtFAR(run.Scores, same, ReportFAR)
	r.AUC = AUC(run.Scores, same)
	r.Threshold, r.ThresholdAcc = BestThreshold(run.Scores, same)
	var neg []float64
	for i, sm := range same {
		if !sm {
			neg = append(neg, run.Scores[i])
		}
	}
	if r.Negatives >= 2 {
		r.Presets = make(map[string]Calibration, len(PresetFARs))
		for name, far := range PresetFARs {
			var cals []Calibration
			r.Impostors, cals, _ = Calibrate(neg, far)
			r.Presets[name] = cals[0]
		}
	}

	// Inputs were checked above, so a non-finite value here means a score
	// so extreme that a threshold above it overflowed; JSON cannot hold it.
	vals := append([]float64{r.Accuracy, r.AccuracyStd, r.TARAtFAR1e3, r.FAR1e3Threshold, r.AUC, r.Threshold, r.ThresholdAcc}, r.FoldThresholds...)
	for _, v := range vals {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return Report{}, errors.New("eval: scores too extreme to place a finite threshold")
		}
	}
	return r, nil
}

// WriteText prints the report as a two-column table for people.
func (r Report) WriteText(w io.Writer) error {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	pct := func(v float64) string { return fmt.Sprintf("%.2f%%", 100*v) }
	dash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	if r.Confidence != nil {
		fmt.Fprintf(tw, "thresholds\tconfidence: the 0-1 scale the API's threshold takes; similarity: the embedder's raw cosine, for reference only\n")
	} else {
		fmt.Fprintf(tw, "thresholds\tsimilarity (raw cosine) only: embedder %s has no calibration, so no confidence can be given; do not pass these numbers to the API as threshold\n", dash(r.Embedder))
	}
	fmt.Fprintf(tw, "pairs\t%d (%d same person, %d different; %d skipped)\n", r.Pairs, r.Positives, r.Negatives, r.Skipped)
	fmt.Fprintf(tw, "images with no face\t%d\n", r.NoFace)
	fmt.Fprintf(tw, "accuracy\t%s ± %s (%d-fold, threshold fitted on the other folds)\n", pct(r.Accuracy), pct(r.AccuracyStd), r.Folds)
	far := fmt.Sprintf("%s at %s", pct(r.TARAtFAR1e3), r.threshold(r.FAR1e3Threshold))
	if allowedFalseAccepts(ReportFAR, r.Negatives) == 0 {
		// Say so, or readers take a FAR the data cannot resolve at face value.
		far += fmt.Sprintf(" (only %d impostor pairs: no false accept allowed)", r.Negatives)
	}
	fmt.Fprintf(tw, "TAR @ FAR 1e-3\t%s\n", far)
	fmt.Fprintf(tw, "ROC AUC\t%.4f\n", r.AUC)
	fmt.Fprintf(tw, "best threshold\t%s: %s on all pairs, fitted on them\n", r.threshold(r.Threshold), pct(r.ThresholdAcc))
	if r.Presets != nil {
		fmt.Fprintf(tw, "impostor similarities\tmean %.4f, sd %.4f over %d pairs\n", r.Impostors.Mean, r.Impostors.StdDev, r.Impostors.N)
		for _, name := range []string{"strict", "medium", "low"} {
			c := r.Presets[name]
			fmt.Fprintf(tw, "preset %s's FAR %g\treached on these pairs at %s, normal fit; empirical %s\n", name, c.FAR, r.threshold(c.Fitted), r.threshold(c.Empirical))
		}
	}
	fmt.Fprintf(tw, "embedder\t%s\n", dash(r.Embedder))
	fmt.Fprintf(tw, "detector\t%s\n", dash(r.Detector))
	fmt.Fprintf(tw, "backend\t%s\n", dash(r.Backend))
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("eval: formatting report: %w", err)
	}
	if _, err := w.Write(b.Bytes()); err != nil {
		return fmt.Errorf("eval: writing report: %w", err)
	}
	return nil
}
