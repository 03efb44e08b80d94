package face

import (
	"context"
	"fmt"
	"math"
	"time"

	"gocv.io/x/gocv"

	"github.com/facedhq/faced/models"
)

// analyse runs every stage after detection on one face.
func (p *Pipeline) analyse(ctx context.Context, img gocv.Mat, d detection, opts Options) (Face, error) {
	f := Face{Box: d.box, Score: d.score}

	five, p68, err := p.landmarks(ctx, img, d, opts)
	if err != nil {
		return Face{}, err
	}
	f.Landmarks = five
	if opts.Landmarks68 {
		f.Landmarks68 = p68
	}
	return p.describe(ctx, img, f, p68, opts)
}

// Analyse runs the stages after landmarks on a face that DetectImage found
// in the same image: alignment on its five landmarks, then the embedding,
// liveness and aligned crop that opts asks for, and quality. A camera
// detects every frame but embeds only the shots worth it. Attributes need
// the 68 landmarks and are not available here.
func (p *Pipeline) Analyse(ctx context.Context, img *Image, f Face, opts Options) (Face, error) {
	if opts.Attributes {
		return Face{}, fmt.Errorf("%w: attributes of an already detected face", ErrStageDisabled)
	}
	if err := p.checkOptions(opts); err != nil {
		return Face{}, err
	}
	if !f.Box.valid(img.Width, img.Height) {
		return Face{}, fmt.Errorf("face: analyse: box %v outside the %dx%d image", f.Box, img.Width, img.Height)
	}
	return p.describe(ctx, img.Mat, f, nil, opts)
}

// describe aligns a located face and runs the stages opts asks for.
func (p *Pipeline) describe(ctx context.Context, img gocv.Mat, f Face, p68 []Point, opts Options) (Face, error) {
	d := detection{box: f.Box, score: f.Score}
	start := time.Now()
	aligned, crops, err := p.alignFace(img, f.Landmarks, opts.Embed)
	opts.Timings.since(StageAlign, start)
	if err != nil {
		return Face{}, err
	}
	defer aligned.Close()
	defer closeCrops(crops)
	if opts.KeepAligned {
		if f.Aligned, err = EncodeJPEG(aligned, 95); err != nil {
			return Face{}, err
		}
	}

	if opts.Embed {
		start = time.Now()
		if f.Embedding, err = p.embed(ctx, crops); err != nil {
			return Face{}, err
		}
		f.EmbedderID = p.EmbedderID()
		opts.Timings.since(StageEmbed, start)
	}

	if opts.Liveness {
		start = time.Now()
		n := p.nets[models.TaskLiveness]
		out, err := p.runCrop(ctx, n, img, d.box)
		if err != nil {
			return Face{}, err
		}
		live, err := models.DecodeLiveness(n.spec, out)
		if err != nil {
			return Face{}, err
		}
		f.Liveness = &live
		opts.Timings.since(StageLiveness, start)
	}

	if opts.Attributes {
		start = time.Now()
		if f.Attributes, err = p.attributes(ctx, img, d.box, p68); err != nil {
			return Face{}, err
		}
		opts.Timings.since(StageAttributes, start)
	}

	f.Quality = p.quality(aligned, f)
	return f, nil
}

// landmarks finds the five alignment points, and the 68 when they are
// needed (asked for, eye state, or alignment on landmarks). Aligning on
// BlazeFace keypoints uses its mouth centre for both mouth corners, which
// align treats as the corners' midpoint.
func (p *Pipeline) landmarks(ctx context.Context, img gocv.Mat, d detection, opts Options) ([5]Point, []Point, error) {
	need68 := !p.alignOnKeypoints || opts.Landmarks68 || opts.Attributes
	var pts []Point
	var five [5]Point
	if n := p.nets[models.TaskLandmarks]; need68 && n != nil {
		start := time.Now()
		var err error
		pts, five, err = p.landmarks68(ctx, n, img, d.box)
		opts.Timings.since(StageLandmarks, start)
		if err != nil {
			return [5]Point{}, nil, err
		}
	}
	if p.alignOnKeypoints {
		if len(d.keypoints) < 4 {
			return [5]Point{}, nil, fmt.Errorf("face: detector gave no keypoints to align on")
		}
		// BlazeFace: subject's right eye (image left), left eye, nose,
		// mouth centre.
		k := d.keypoints
		five = [5]Point{k[0], k[1], k[2], k[3], k[3]}
	}
	return five, pts, nil
}

// landmarks68 runs the 68-point network on a square crop centred on the
// detector box (padded where it leaves the photo, so faces cut by the edge
// stay centred) and returns the points and their five-point reduction in
// photo pixels.
func (p *Pipeline) landmarks68(ctx context.Context, n *net, img gocv.Mat, box Box) ([]Point, [5]Point, error) {
	r := centredSquare(box, n.spec.CropScale)
	px, err := cropPaddedPixels(img, r, n.spec.Input.Width(), n.spec.Input.Height(), n.spec.Input.Color)
	if err != nil {
		return nil, [5]Point{}, err
	}
	out, err := p.run(ctx, n, px)
	if err != nil {
		return nil, [5]Point{}, err
	}
	norm, err := models.DecodeLandmarks68(out)
	if err != nil {
		return nil, [5]Point{}, err
	}
	toPhoto := func(q models.Point) Point {
		return Point{float32(r.Min.X) + q.X*float32(r.Dx()), float32(r.Min.Y) + q.Y*float32(r.Dy())}
	}
	pts := make([]Point, len(norm))
	for i, q := range norm {
		pts[i] = toPhoto(q)
	}
	five5, err := models.FivePoints(norm)
	if err != nil {
		return nil, [5]Point{}, err
	}
	var five [5]Point
	for i, q := range five5 {
		five[i] = toPhoto(q)
	}
	return pts, five, nil
}

// templatePoints is a geometry's five-point template in photo-point form.
func templatePoints(g models.Geometry) []Point {
	dst := make([]Point, 5)
	for i, t := range g.Template() {
		dst[i] = Point{t.X, t.Y}
	}
	return dst
}

// align warps the face so its five points land on the template of
// geometry g, in a g.Side square. A single mouth point (BlazeFace: both
// corners equal) goes to the template's mouth midpoint.
func (p *Pipeline) align(img gocv.Mat, five [5]Point, g models.Geometry) (gocv.Mat, error) {
	dst := templatePoints(g)
	src := five[:]
	if five[3] == five[4] { // one mouth point (BlazeFace)
		mouth := Point{(dst[3].X + dst[4].X) / 2, (dst[3].Y + dst[4].Y) / 2}
		src, dst = five[:4], append(dst[:3], mouth)
	}
	m, ok := fitSimilarity(src, dst)
	if !ok {
		return gocv.Mat{}, fmt.Errorf("face: landmarks are degenerate, cannot align")
	}
	return warpAligned(img, m, g.Side)
}

// alignFace makes the ArcFace crop, which quality and KeepAligned use
// whatever framing the embedders want, and with embed the crops of the
// embedders' geometries (embedderCrops).
func (p *Pipeline) alignFace(img gocv.Mat, five [5]Point, embed bool) (gocv.Mat, map[models.Geometry]gocv.Mat, error) {
	aligned, err := p.align(img, five, models.ArcFaceGeometry)
	if err != nil || !embed {
		return aligned, nil, err
	}
	crops, err := p.embedderCrops(aligned, func(g models.Geometry) (gocv.Mat, error) { return p.align(img, five, g) })
	if err != nil {
		aligned.Close()
		return gocv.Mat{}, nil, err
	}
	return aligned, crops, nil
}

// embedderCrops makes the crop of every geometry the embedders need, one
// warp per distinct geometry: the ArcFace one is arcface itself, the
// others come from warp. The caller closes them with closeCrops.
func (p *Pipeline) embedderCrops(arcface gocv.Mat, warp func(models.Geometry) (gocv.Mat, error)) (map[models.Geometry]gocv.Mat, error) {
	crops := map[models.Geometry]gocv.Mat{}
	for _, g := range p.geometries {
		if g == models.ArcFaceGeometry {
			crops[g] = arcface
			continue
		}
		c, err := warp(g)
		if err != nil {
			closeCrops(crops)
			return nil, err
		}
		crops[g] = c
	}
	return crops, nil
}

// closeCrops closes the crops embedderCrops made, not the ArcFace crop it
// was given.
func closeCrops(crops map[models.Geometry]gocv.Mat) {
	for g, c := range crops {
		if g != models.ArcFaceGeometry {
			c.Close()
		}
	}
}

// Eye landmark indices (iBUG 68): corners and lids of the eye on the image's
// left (the subject's right) and right.
var (
	leftEyeCorners, rightEyeCorners = [2]int{36, 39}, [2]int{42, 45}
	leftEyeLids, rightEyeLids       = [4]int{37, 38, 40, 41}, [4]int{43, 44, 46, 47}
)

func (p *Pipeline) attributes(ctx context.Context, img gocv.Mat, box Box, p68 []Point) (*Attributes, error) {
	a := &Attributes{Emotions: make(map[string]float32)}
	out, err := p.runCrop(ctx, p.nets[models.TaskAge], img, box)
	if err != nil {
		return nil, err
	}
	if a.Age, err = models.DecodeAge(out); err != nil {
		return nil, err
	}
	if out, err = p.runCrop(ctx, p.nets[models.TaskGender], img, box); err != nil {
		return nil, err
	}
	male, err := models.DecodeGender(out)
	if err != nil {
		return nil, err
	}
	a.Gender, a.GenderScore = "male", male
	if male < 0.5 {
		a.Gender, a.GenderScore = "female", 1-male
	}
	if out, err = p.runCrop(ctx, p.nets[models.TaskEmotion], img, box); err != nil {
		return nil, err
	}
	probs, err := models.DecodeEmotion(out)
	if err != nil {
		return nil, err
	}
	best := 0
	for i, pr := range probs {
		a.Emotions[models.Emotions[i]] = pr
		if pr > probs[best] {
			best = i
		}
	}
	a.Emotion = models.Emotions[best]
	if out, err = p.runCrop(ctx, p.nets[models.TaskPose], img, box); err != nil {
		return nil, err
	}
	if a.Pose, err = models.DecodePose(out); err != nil {
		return nil, err
	}
	a.LeftEyeOpen, a.RightEyeOpen = 1, 1
	if len(p68) == 68 {
		if a.LeftEyeOpen, err = p.eyeOpen(ctx, img, p68, leftEyeCorners, leftEyeLids); err != nil {
			return nil, err
		}
		if a.RightEyeOpen, err = p.eyeOpen(ctx, img, p68, rightEyeCorners, rightEyeLids); err != nil {
			return nil, err
		}
	}
	return a, nil
}

func (p *Pipeline) eyeOpen(ctx context.Context, img gocv.Mat, p68 []Point, corners [2]int, lids [4]int) (float32, error) {
	n := p.nets[models.TaskEyes]
	r := eyeCrop(p68, corners[0], corners[1], lids, img.Cols(), img.Rows())
	if r.Dx() < 2 || r.Dy() < 2 {
		return 0, nil // eye outside the photo or too small to judge
	}
	px, err := cropPixels(img, r, n.spec.Input.Width(), n.spec.Input.Height(), n.spec.Input.Color)
	if err != nil {
		return 0, err
	}
	out, err := p.run(ctx, n, px)
	if err != nil {
		return 0, err
	}
	return models.DecodeEyeOpen(out)
}

// Quality rates how useful a face is for recognition, each part in [0,1].
type Quality struct {
	Score     float32 `json:"score"`     // geometric mean of the parts
	Size      float32 `json:"size"`      // shorter box side / 112 px, capped at 1
	Sharpness float32 `json:"sharpness"` // Laplacian variance v of the aligned crop, v/(v+100)
	Frontal   float32 `json:"frontal"`   // 1 for a frontal face, falling with yaw and pitch
	EyesOpen  float32 `json:"eyes_open"` // mean eye-open probability (1 when not measured)
}

func (p *Pipeline) quality(aligned gocv.Mat, f Face) Quality {
	q := Quality{EyesOpen: 1}
	q.Size = min(1, min(f.Box.Width(), f.Box.Height())/float32(models.AlignedSize))
	v := sharpness(aligned)
	q.Sharpness = float32(v / (v + 100))
	if a := f.Attributes; a != nil {
		rad := math.Pi / 180
		q.Frontal = float32(max(0, math.Cos(float64(a.Pose.Yaw)*rad)*math.Cos(float64(a.Pose.Pitch)*rad)))
		q.EyesOpen = (a.LeftEyeOpen + a.RightEyeOpen) / 2
	} else {
		q.Frontal = frontalFromLandmarks(f.Landmarks)
	}
	q.Score = float32(math.Pow(float64(q.Size*q.Sharpness*q.Frontal*q.EyesOpen), 0.25))
	return q
}

// frontalFromLandmarks estimates how frontal a face is from how far the nose
// sits from the midpoint of the eyes, relative to the eye distance: about 0
// for a frontal face and 0.5 or more in profile.
func frontalFromLandmarks(l [5]Point) float32 {
	eyeDist := math.Hypot(float64(l[1].X-l[0].X), float64(l[1].Y-l[0].Y))
	if eyeDist < 1 {
		return 0
	}
	midX := float64(l[0].X+l[1].X) / 2
	off := math.Abs(float64(l[2].X)-midX) / eyeDist
	return float32(max(0, 1-2*off))
}

// embedOne runs one embedder on an aligned face and, with Config.Flip, on
// its mirror image too, returning the unit-length sum: test-time
// augmentation that averages out the network's left-right asymmetries.
func (p *Pipeline) embedOne(ctx context.Context, n *net, e *models.Embedder, aligned gocv.Mat) ([]float32, error) {
	once := func(m gocv.Mat) ([]float32, error) {
		px, err := matPixels(m, n.spec.Input.Color)
		if err != nil {
			return nil, err
		}
		out, err := p.run(ctx, n, px)
		if err != nil {
			return nil, err
		}
		return e.Decode(out)
	}
	v, err := once(aligned)
	if err != nil || !p.cfg.Flip {
		return v, err
	}
	mirror := gocv.NewMat()
	defer mirror.Close()
	gocv.Flip(aligned, &mirror, 1)
	w, err := once(mirror)
	if err != nil {
		return nil, err
	}
	for i := range v {
		v[i] += w[i]
	}
	return models.L2Normalize(v), nil
}
