package models

import (
	"math"
	"testing"

	"github.com/facedhq/faced/accel"
)

// synthetic68 gives point i the position (i², 100-3i): non-linear in i, so a
// mean over the wrong indices cannot land on the right answer by chance.
func synthetic68() []float32 {
	v := make([]float32, 136)
	for i := range 68 {
		v[2*i] = float32(i * i)
		v[2*i+1] = float32(100 - 3*i)
	}
	return v
}

func TestDecodeLandmarks68(t *testing.T) {
	pts, err := DecodeLandmarks68([]accel.Tensor{{Shape: []int64{1, 136}, Data: synthetic68()}})
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != 68 {
		t.Fatalf("%d points", len(pts))
	}
	for _, i := range []int{0, 30, 36, 67} {
		if want := (Point{float32(i * i), float32(100 - 3*i)}); pts[i] != want {
			t.Errorf("point %d = %v, want %v", i, pts[i], want)
		}
	}

	five, err := FivePoints(pts)
	if err != nil {
		t.Fatal(err)
	}
	want := [5]Point{
		{(37*37 + 38*38 + 40*40 + 41*41) / 4.0, 100 - 3*(37+38+40+41)/4.0},
		{(43*43 + 44*44 + 46*46 + 47*47) / 4.0, 100 - 3*(43+44+46+47)/4.0},
		{30 * 30, 100 - 3*30},
		{(48*48 + 60*60) / 2.0, 100 - 3*(48+60)/2.0},
		{(54*54 + 64*64) / 2.0, 100 - 3*(54+64)/2.0},
	}
	for i := range want {
		if !approx(five[i].X, want[i].X, 1e-3) || !approx(five[i].Y, want[i].Y, 1e-3) {
			t.Errorf("five[%d] = %v, want %v", i, five[i], want[i])
		}
	}
}

func TestDecodeLandmarks68Errors(t *testing.T) {
	nan := synthetic68()
	nan[77] = float32(math.NaN())
	for name, outs := range map[string][]accel.Tensor{
		"no outputs": nil,
		"135 values": {{Data: make([]float32, 135)}},
		"137 values": {{Data: make([]float32, 137)}},
		"NaN":        {{Data: nan}},
	} {
		if _, err := DecodeLandmarks68(outs); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	for _, n := range []int{0, 5, 67, 69} {
		if _, err := FivePoints(make([]Point, n)); err == nil {
			t.Errorf("FivePoints of %d points: no error", n)
		}
	}
}

func TestArcFaceTemplateInsideCrop(t *testing.T) {
	tp := ArcFaceTemplate
	for i, p := range tp {
		if p.X <= 0 || p.Y <= 0 || p.X >= AlignedSize || p.Y >= AlignedSize {
			t.Errorf("template point %d %v outside the %d crop", i, p, AlignedSize)
		}
	}
	// Image-left eye left of image-right eye; eyes above nose above mouth.
	if !(tp[0].X < tp[1].X && tp[3].X < tp[4].X && tp[0].Y < tp[2].Y && tp[2].Y < tp[3].Y) {
		t.Errorf("template order: %v", tp)
	}
}
