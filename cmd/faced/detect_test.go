package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/facedhq/faced/internal/testenv"
)

// detectLine is one line of `faced detect`'s documented output, decoded
// into the test's own struct so that a renamed field breaks the test.
type detectLine struct {
	Photo string `json:"photo"`
	Faces []struct {
		Box struct {
			X1, Y1, X2, Y2 float32
		} `json:"box"`
		Score     float32 `json:"score"`
		Landmarks []struct {
			X, Y float32
		} `json:"landmarks"`
	} `json:"faces"`
}

func decodeDetect(t *testing.T, out string) []detectLine {
	t.Helper()
	var lines []detectLine
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var l detectLine
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("decoding detect output: %v\n%s", err, out)
		}
		lines = append(lines, l)
	}
	return lines
}

func TestDetectFindsTheFace(t *testing.T) {
	photo := filepath.Join(testenv.DataDir(t), "deepface", "img1.jpg")
	lines := decodeDetect(t, mustFaced(t, "detect", photo))
	if len(lines) != 1 || lines[0].Photo != photo {
		t.Fatalf("got %d lines %+v, want one for %s", len(lines), lines, photo)
	}
	faces := lines[0].Faces
	if len(faces) != 1 {
		t.Fatalf("img1.jpg: %d faces, want 1", len(faces))
	}
	f := faces[0]
	if f.Score < 0.7 || f.Score > 1 {
		t.Errorf("score %v, want in [0.7, 1]", f.Score)
	}
	if f.Box.X2-f.Box.X1 < 50 || f.Box.Y2-f.Box.Y1 < 50 {
		t.Errorf("box %+v: want a face at least 50 px wide and high", f.Box)
	}
	if len(f.Landmarks) != 5 {
		t.Fatalf("%d landmarks, want 5", len(f.Landmarks))
	}
	for i, p := range f.Landmarks {
		if p.X < f.Box.X1 || p.X > f.Box.X2 || p.Y < f.Box.Y1 || p.Y > f.Box.Y2 {
			t.Errorf("landmark %d %+v outside the box %+v", i, p, f.Box)
		}
	}
	// Eyes above the mouth corners, left eye left of the right one.
	if !(f.Landmarks[0].X < f.Landmarks[1].X && f.Landmarks[0].Y < f.Landmarks[3].Y) {
		t.Errorf("landmarks %+v are not laid out like a face", f.Landmarks)
	}
}

// TestDetectNotAnImage: a text file is reported by name with the decoder's
// reason and a failing status, and the good photo beside it still prints.
func TestDetectNotAnImage(t *testing.T) {
	good := filepath.Join(testenv.DataDir(t), "deepface", "img1.jpg")
	bad := filepath.Join(t.TempDir(), "notes.jpg")
	if err := os.WriteFile(bad, []byte("this is not a photo\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := faced(t, "detect", bad, good)
	if err == nil {
		t.Fatalf("detect on a text file succeeded; stdout:\n%s", out)
	}
	if !strings.Contains(err.Error(), "1 of 2 photos failed") {
		t.Errorf("error %q, want it to count the failed photos", err)
	}
	if !strings.Contains(errOut, bad) || !strings.Contains(errOut, "unsupported image format") {
		t.Errorf("stderr %q, want the file name and the reason", errOut)
	}
	if lines := decodeDetect(t, out); len(lines) != 1 || lines[0].Photo != good || len(lines[0].Faces) != 1 {
		t.Errorf("stdout %q, want the good photo's one face", out)
	}
}

func TestDetectBadArguments(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.jpg")
	badConfig := filepath.Join(t.TempDir(), "faced.yaml")
	if err := os.WriteFile(badConfig, []byte("vision: {detektor: x}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no photo", []string{"detect"}, "no photo given"},
		{"missing file", []string{"detect", missing}, "1 of 1 photos failed"},
		{"unknown config key", []string{"detect", "--config", badConfig, missing}, "detektor"},
		{"unknown model", []string{"detect", "--detector", "nope", missing}, "nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, err := faced(t, tc.args...)
			if err == nil {
				t.Fatal("succeeded, want an error")
			}
			if !strings.Contains(err.Error()+errOut, tc.want) {
				t.Errorf("error %q, stderr %q: want %q", err, errOut, tc.want)
			}
		})
	}
}
