package face

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gocv.io/x/gocv"

	"github.com/facedhq/faced/accel"
	"github.com/facedhq/faced/models"
)

// Config chooses the networks of a pipeline and where they run.
type Config struct {
	// DepsDir holds models/ (see models.FindDir).
	DepsDir string
	// Backends run the models: each model goes to the first backend that
	// supports its format, so [onnxrt, tflite] runs ONNX models on ONNX
	// Runtime and TFLite models on TFLite.
	Backends []accel.Backend
	// Detector, Landmarks, Embedder and Liveness name catalogue models.
	// Landmarks may be empty for a detector with keypoints (BlazeFace): the
	// face is then aligned on its eyes, nose and mouth centre. Embedder and
	// Liveness may be empty to disable those stages.
	Detector  string
	Landmarks string
	Embedder  string
	Liveness  string
	// Align chooses the points faces are aligned on: "landmarks" (the
	// 68-point model's five points) or "keypoints" (the detector's eyes,
	// nose and mouth centre, which saves the landmark run). Empty means
	// keypoints when the detector has them, else landmarks.
	Align string
	// Attributes loads the age, gender, expression, head pose and eye
	// state networks.
	Attributes bool
	// Sessions per model: how many requests may run one model at once.
	Sessions int
	// Limits bound the photos Decode accepts.
	Limits Limits
	// MinScore is the detection confidence a face needs; 0 means the
	// detector's manifest default, else defaultMinScore.
	MinScore float32
	// Search is the FaceSearch of calls whose Options leave it zero.
	Search FaceSearch
	// FuseEmbedder names a second embedder, or a second and a third
	// joined by "+", trained apart from Embedder. Each face is then
	// embedded by all n (one after another) and their unit vectors are
	// joined, each scaled by 1/sqrt(n): the cosine of two fused embeddings
	// is the mean of the embedders' cosines. Their mistakes differ, so the
	// mean separates strangers better (README, "Choosing the models") at
	// the cost of an embedder run per face each. The embedder ID names
	// them all, with 6 hex digits of each file's sha256:
	// "arcface-r512+mobilefacenet-192@<6+6 hex>". No embedder may be
	// named twice, and at most MaxFused are fused.
	FuseEmbedder string
	// Flip embeds each face and its mirror image and sums the two
	// (test-time augmentation): a second embedder run per face for
	// slightly better recognition. The embedder ID gets FlipSuffix.
	Flip bool
	// Observe, when set, receives the duration of every model run (one
	// accelerator session run, not the wait for a free session), with the
	// model's catalogue name. It runs on the request's goroutine and must
	// be cheap and safe for concurrent use. SetObserver replaces it.
	Observe func(model string, d time.Duration)
	// CustomModels are models declared in the configuration rather than
	// the catalogue (models.Manifest.AddCustom); Detector and Embedder
	// may name them.
	CustomModels []models.Spec
}

// FlipSuffix marks the embedder ID (and calibration name) of a pipeline
// with Config.Flip: "arcface-r512+flip@<sha256 prefix>".
const FlipSuffix = "+flip"

// defaultMinScore is the detection confidence of a detector whose
// manifest entry gives none.
const defaultMinScore = 0.7

// DefaultAttributeModels are the networks Config.Attributes loads.
var DefaultAttributeModels = map[models.Task]string{
	models.TaskAge:     "ssrnet-age",
	models.TaskGender:  "ssrnet-gender",
	models.TaskEmotion: "expression7",
	models.TaskPose:    "hopenet-pose",
	models.TaskEyes:    "eye-state",
}

// Selector says what to do when a photo holds several faces (FindFace's
// mf_selector).
type Selector string

// The selectors.
const (
	SelectAll     Selector = "all"     // every face, biggest first
	SelectBiggest Selector = "biggest" // only the biggest face
	SelectReject  Selector = "reject"  // ErrTooManyFaces if more than one
	// SelectCentral keeps only the face whose centre is nearest the photo's
	// centre: how LFW's protocol names the person a photo is of (its photos
	// are cut around that face). The biggest box in such a photo can be a
	// bystander cut by the frame. Not one of FindFace's selectors, so
	// ParseSelector does not accept it.
	SelectCentral Selector = "central"
)

// ParseSelector validates a selector name; empty means all.
func ParseSelector(s string) (Selector, error) {
	switch Selector(s) {
	case "", SelectAll:
		return SelectAll, nil
	case SelectBiggest, SelectReject:
		return Selector(s), nil
	}
	return "", fmt.Errorf("face: unknown selector %q (want all, biggest or reject)", s)
}

// Options choose the stages one call runs. Detection, the five landmarks
// and quality always run.
type Options struct {
	Landmarks68 bool // return the 68 landmarks
	Embed       bool // compute the embedding (needs Config.Embedder)
	Liveness    bool // compute the liveness score (needs Config.Liveness)
	Attributes  bool // age, gender, emotion, pose, eyes (needs Config.Attributes)
	// KeepAligned returns the 112x112 ArcFace-aligned crop as JPEG,
	// whatever framing the embedders use (EmbedAligned reframes it).
	KeepAligned bool
	// MinFaceSize drops faces whose box is narrower or shorter than this
	// many pixels.
	MinFaceSize int
	// Search bounds the faces detection looks for; the zero value finds
	// faces from a close-up to 1/48 of the photo's long side.
	Search   FaceSearch
	Selector Selector
	// Timings, when set, receives the time spent in each stage.
	Timings Timings
}

// ErrTooManyFaces is returned under SelectReject when a photo holds more
// than one face; the faces found are listed so an API can report them.
type ErrTooManyFaces struct {
	Faces []Box
}

func (e *ErrTooManyFaces) Error() string {
	return fmt.Sprintf("face: too many faces: %d", len(e.Faces))
}

// ErrStageDisabled reports a requested stage whose model is not loaded.
var ErrStageDisabled = errors.New("face: stage not configured")

// Stage names a step of the pipeline, for timings.
type Stage string

// The pipeline stages.
const (
	StageDecode     Stage = "decode"
	StageDetect     Stage = "detect"
	StageLandmarks  Stage = "landmarks"
	StageAlign      Stage = "align"
	StageEmbed      Stage = "embed"
	StageLiveness   Stage = "liveness"
	StageAttributes Stage = "attributes"
)

// Stages lists the stages in pipeline order.
var Stages = []Stage{StageDecode, StageDetect, StageLandmarks, StageAlign, StageEmbed, StageLiveness, StageAttributes}

// Timings accumulates time per stage. It is not safe for concurrent use:
// give each call its own.
type Timings map[Stage]time.Duration

func (t Timings) since(s Stage, start time.Time) {
	if t != nil {
		t[s] += time.Since(start)
	}
}

// Face is everything the pipeline learned about one face.
type Face struct {
	Box   Box     `json:"box"`
	Score float32 `json:"score"`
	// Landmarks are the five alignment points: eye on the image's left,
	// eye on the right, nose tip, mouth corner left, mouth corner right.
	Landmarks   [5]Point `json:"landmarks"`
	Landmarks68 []Point  `json:"landmarks68,omitempty"`
	// Aligned is the 112x112 ArcFace-aligned crop as JPEG, when asked for.
	Aligned []byte `json:"-"`
	// Embedding is unit length; EmbedderID names its embedding space.
	Embedding  []float32   `json:"embedding,omitempty"`
	EmbedderID string      `json:"embedder,omitempty"`
	Liveness   *float32    `json:"liveness,omitempty"`
	Attributes *Attributes `json:"attributes,omitempty"`
	Quality    Quality     `json:"quality"`
}

// Attributes are the soft biometrics of a face.
type Attributes struct {
	Age          float32            `json:"age"`
	Gender       string             `json:"gender"`       // "male" or "female"
	GenderScore  float32            `json:"gender_score"` // confidence in Gender, 0.5–1
	Emotion      string             `json:"emotion"`      // the most likely of models.Emotions
	Emotions     map[string]float32 `json:"emotions"`
	Pose         models.Pose        `json:"pose"`
	LeftEyeOpen  float32            `json:"left_eye_open"` // eye on the image's left
	RightEyeOpen float32            `json:"right_eye_open"`
}

// Pipeline runs the configured networks over photos. It is safe for
// concurrent use; each model has Config.Sessions sessions.
type Pipeline struct {
	cfg      Config
	detector models.Detector
	// embedders are Config.Embedder and the FuseEmbedder ones, in fusion
	// order; empty without an embedder. The first is also
	// nets[TaskEmbed].
	embedders []embedStage
	// embedderID and geometries are fixed once the embedders are loaded
	// (New): EmbedderID's answer, and the distinct framings the embedders
	// need, one warp each per face.
	embedderID string
	geometries []models.Geometry
	nets       map[models.Task]*net
	manifests  []models.Spec
	// alignOnKeypoints aligns on the detector's keypoints; the landmark
	// model then runs only when its output is asked for.
	alignOnKeypoints bool
}

// net is a loaded model: its spec and its session pool.
type net struct {
	spec models.Spec
	pool *accel.Pool
}

// New loads the configured models, verifying each file's sha256.
func New(ctx context.Context, cfg Config) (*Pipeline, error) {
	if cfg.Sessions < 1 {
		cfg.Sessions = 1
	}
	if cfg.Limits == (Limits{}) {
		cfg.Limits = DefaultLimits()
	}
	m, err := models.LoadManifest()
	if err != nil {
		return nil, err
	}
	if err := m.AddCustom(cfg.CustomModels...); err != nil {
		return nil, fmt.Errorf("face: %w", err)
	}
	p := &Pipeline{cfg: cfg, nets: make(map[models.Task]*net)}
	want := map[models.Task]string{
		models.TaskDetect:    cfg.Detector,
		models.TaskLandmarks: cfg.Landmarks,
		models.TaskEmbed:     cfg.Embedder,
		models.TaskLiveness:  cfg.Liveness,
	}
	if cfg.Attributes {
		for t, name := range DefaultAttributeModels {
			want[t] = name
		}
	}
	if cfg.Detector == "" {
		return nil, fmt.Errorf("face: a detector is required")
	}
	for task, name := range want {
		if name == "" {
			continue
		}
		spec, err := m.Model(name)
		if err != nil {
			p.Close()
			return nil, err
		}
		if spec.Task != task {
			p.Close()
			return nil, fmt.Errorf("face: model %s is a %s model, configured as %s", name, spec.Task, task)
		}
		n, err := p.load(ctx, spec)
		if err != nil {
			p.Close()
			return nil, err
		}
		p.nets[task] = n
		p.manifests = append(p.manifests, spec)
	}
	slices.SortFunc(p.manifests, func(a, b models.Spec) int { return cmp.Compare(a.Name, b.Name) })
	if p.detector, err = models.NewDetector(p.nets[models.TaskDetect].spec); err != nil {
		p.Close()
		return nil, err
	}
	if p.cfg.MinScore == 0 {
		p.cfg.MinScore = p.detector.Spec().MinScore
	}
	if p.cfg.MinScore == 0 {
		p.cfg.MinScore = defaultMinScore
	}
	hasKeypoints := p.detector.Spec().Family == "blazeface"
	switch cfg.Align {
	case "":
		// The measured default: the detector's own keypoints when it has
		// them (saves the landmark run), else the 68 landmarks.
		p.alignOnKeypoints = hasKeypoints
	case "keypoints":
		p.alignOnKeypoints = true
	case "landmarks":
	default:
		p.Close()
		return nil, fmt.Errorf("face: unknown align %q (want landmarks or keypoints)", cfg.Align)
	}
	if p.alignOnKeypoints && !hasKeypoints {
		p.Close()
		return nil, fmt.Errorf("face: detector %s has no keypoints to align on: use align landmarks", cfg.Detector)
	}
	if !p.alignOnKeypoints && cfg.Landmarks == "" {
		p.Close()
		return nil, fmt.Errorf("face: aligning on landmarks needs a landmarks model (detector %s has no keypoints)", cfg.Detector)
	}
	if n := p.nets[models.TaskEmbed]; n != nil {
		st, err := newEmbedStage(n)
		if err != nil {
			p.Close()
			return nil, err
		}
		p.embedders = append(p.embedders, st)
	}
	if cfg.FuseEmbedder != "" {
		if err := p.loadFused(ctx, m, cfg.FuseEmbedder); err != nil {
			p.Close()
			return nil, err
		}
		slices.SortFunc(p.manifests, func(a, b models.Spec) int { return cmp.Compare(a.Name, b.Name) })
	}
	p.embedderID, p.geometries = p.makeEmbedderID(), p.distinctGeometries()
	return p, nil
}

func (p *Pipeline) load(ctx context.Context, spec models.Spec) (*net, error) {
	format := accel.Format(spec.Format)
	i := slices.IndexFunc(p.cfg.Backends, func(b accel.Backend) bool { return accel.Supports(b, format) })
	if i < 0 {
		return nil, fmt.Errorf("face: model %s is %s and no configured backend runs %s: %w", spec.Name, format, format, accel.ErrUnsupported)
	}
	data, err := spec.Load(p.cfg.DepsDir)
	if err != nil {
		return nil, err
	}
	pool, err := accel.NewPool(ctx, p.cfg.Backends[i], accel.Model{Name: spec.Name, Format: format, Data: data}, p.cfg.Sessions)
	if err != nil {
		return nil, err
	}
	pool.SetObserver(modelObserver(p.cfg.Observe, spec.Name))
	return &net{spec: spec, pool: pool}, nil
}

// SetObserver replaces Config.Observe for every loaded model (nil stops
// observing). It may be called while the pipeline serves, so a front end
// created after the pipeline can still hook its metrics in.
func (p *Pipeline) SetObserver(fn func(model string, d time.Duration)) {
	for _, n := range p.allNets() {
		n.pool.SetObserver(modelObserver(fn, n.spec.Name))
	}
}

// modelObserver binds an observer to one model's name.
func modelObserver(fn func(model string, d time.Duration), model string) func(time.Duration) {
	if fn == nil {
		return nil
	}
	return func(d time.Duration) { fn(model, d) }
}

// Close releases every session. The backends stay open: they belong to the
// caller.
func (p *Pipeline) Close() error {
	var errs []error
	for _, n := range p.allNets() {
		errs = append(errs, n.pool.Close())
	}
	return errors.Join(errs...)
}

// allNets lists every loaded model, the fused embedders' included.
func (p *Pipeline) allNets() []*net {
	all := make([]*net, 0, len(p.nets)+len(p.embedders))
	for _, n := range p.nets {
		all = append(all, n)
	}
	for _, st := range p.embedders[min(1, len(p.embedders)):] { // the first is in nets
		all = append(all, st.net)
	}
	return all
}

// Models lists the loaded models.
func (p *Pipeline) Models() []models.Spec { return p.manifests }

// EmbedderID names the embedding space of this pipeline's embeddings, or ""
// when no embedder is loaded.
func (p *Pipeline) EmbedderID() string { return p.embedderID }

// makeEmbedderID builds EmbedderID from the loaded embedders and Flip.
func (p *Pipeline) makeEmbedderID() string {
	if len(p.embedders) == 0 {
		return ""
	}
	name, sum, _ := strings.Cut(p.embedders[0].embedder.ID(), "@")
	if len(p.embedders) > 1 {
		// A fused space is no one embedder's: name them all, with 6 hex
		// digits from each file.
		sum = sum[:6]
		for _, st := range p.embedders[1:] {
			name += "+" + st.embedder.Spec().Name
			sum += st.embedder.Spec().SHA256[:6]
		}
	}
	if p.cfg.Flip {
		// Flipped and plain embeddings are close but not the same space:
		// thresholds differ, so they must not mix.
		name += FlipSuffix
	}
	return name + "@" + sum
}

// EmbedderDim is the length of this pipeline's embeddings, or 0.
func (p *Pipeline) EmbedderDim() int {
	dim := 0
	for _, st := range p.embedders {
		dim += st.embedder.Spec().Dim
	}
	return dim
}

// Has reports whether a stage's model is loaded.
func (p *Pipeline) Has(t models.Task) bool { return p.nets[t] != nil }

// Detect decodes a photo and runs the chosen stages on every face in it.
// A photo without faces gives an empty slice, not an error.
func (p *Pipeline) Detect(ctx context.Context, data []byte, opts Options) ([]Face, error) {
	start := time.Now()
	img, err := Decode(data, p.cfg.Limits)
	opts.Timings.since(StageDecode, start)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	return p.DetectImage(ctx, img, opts)
}

// DetectImage runs the pipeline on an already decoded photo.
func (p *Pipeline) DetectImage(ctx context.Context, img *Image, opts Options) ([]Face, error) {
	if err := p.checkOptions(opts); err != nil {
		return nil, err
	}
	start := time.Now()
	search := opts.Search
	if search == (FaceSearch{}) {
		search = p.cfg.Search
	}
	// Faces below the caller's minimum are dropped anyway: do not look
	// for them.
	if m := float32(opts.MinFaceSize); m > search.minFace(img.Width, img.Height) {
		search.MinFace = m
	}
	dets, err := p.detect(ctx, img.Mat, search)
	opts.Timings.since(StageDetect, start)
	if err != nil {
		return nil, err
	}
	dets = selectFaces(dets, opts.MinFaceSize)
	switch opts.Selector {
	case SelectBiggest:
		dets = dets[:min(1, len(dets))]
	case SelectCentral:
		dets = nearestCentre(dets, img.Width, img.Height)
	case SelectReject:
		if len(dets) > 1 {
			e := &ErrTooManyFaces{}
			for _, d := range dets {
				e.Faces = append(e.Faces, d.box)
			}
			return nil, e
		}
	}
	faces := make([]Face, 0, len(dets))
	for _, d := range dets {
		f, err := p.analyse(ctx, img.Mat, d, opts)
		if err != nil {
			return nil, err
		}
		faces = append(faces, f)
	}
	return faces, nil
}

func (p *Pipeline) checkOptions(opts Options) error {
	if opts.Embed && len(p.embedders) == 0 {
		return fmt.Errorf("%w: embedding", ErrStageDisabled)
	}
	if opts.Liveness && !p.Has(models.TaskLiveness) {
		return fmt.Errorf("%w: liveness", ErrStageDisabled)
	}
	if opts.Attributes && !p.Has(models.TaskAge) {
		return fmt.Errorf("%w: attributes", ErrStageDisabled)
	}
	if opts.Landmarks68 && !p.Has(models.TaskLandmarks) {
		return fmt.Errorf("%w: 68 landmarks", ErrStageDisabled)
	}
	if opts.Selector == "" || opts.Selector == SelectCentral {
		return nil
	}
	if _, err := ParseSelector(string(opts.Selector)); err != nil {
		return err
	}
	return nil
}

// detection is a detector result in photo pixels.
type detection struct {
	box       Box
	score     float32
	keypoints []Point
}

// selectFaces drops faces below the minimum size and orders the rest
// biggest first (ties by score), the order every API reports.
func selectFaces(dets []detection, minSize int) []detection {
	m := float32(minSize)
	dets = slices.DeleteFunc(dets, func(d detection) bool { return d.box.Width() < m || d.box.Height() < m })
	slices.SortStableFunc(dets, func(a, b detection) int {
		if c := cmp.Compare(b.box.Area(), a.box.Area()); c != 0 {
			return c
		}
		return cmp.Compare(b.score, a.score)
	})
	return dets
}

// nearestCentre keeps the one detection whose box centre is nearest the
// centre of a w x h photo.
func nearestCentre(dets []detection, w, h int) []detection {
	if len(dets) == 0 {
		return dets
	}
	cx, cy := float32(w)/2, float32(h)/2
	dist := func(d detection) float32 {
		dx, dy := (d.box.X1+d.box.X2)/2-cx, (d.box.Y1+d.box.Y2)/2-cy
		return dx*dx + dy*dy
	}
	best := slices.MinFunc(dets, func(a, b detection) int { return cmp.Compare(dist(a), dist(b)) })
	return []detection{best}
}

// run feeds pixels to a model.
func (p *Pipeline) run(ctx context.Context, n *net, px models.Pixels) ([]accel.Tensor, error) {
	t, err := n.spec.Input.Tensor(px)
	if err != nil {
		return nil, err
	}
	out, err := n.pool.Run(ctx, []accel.Tensor{t})
	if err != nil {
		return nil, fmt.Errorf("face: %s: %w", n.spec.Name, err)
	}
	return out, nil
}

// runCrop cuts a face region for a "box" crop model and runs it.
func (p *Pipeline) runCrop(ctx context.Context, n *net, img gocv.Mat, box Box) ([]accel.Tensor, error) {
	in := n.spec.Input
	scale := n.spec.CropScale
	if scale == 0 {
		scale = 1
	}
	r := squareCrop(box, img.Cols(), img.Rows(), scale)
	px, err := cropPixels(img, r, in.Width(), in.Height(), in.Color)
	if err != nil {
		return nil, err
	}
	return p.run(ctx, n, px)
}
