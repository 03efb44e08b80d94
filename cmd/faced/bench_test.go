package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/facedhq/faced/internal/testenv"
)

// TestBenchPipeline runs a tiny bench and checks the report's shape only:
// timings on a shared 2-core machine are not something a test can assert.
func TestBenchPipeline(t *testing.T) {
	images := filepath.Join(testenv.DataDir(t), "deepface")
	var r struct {
		Detector string  `json:"detector"`
		Embedder string  `json:"embedder"`
		Images   int     `json:"images"`
		ModelMB  float64 `json:"model_mb"`
		Modes    map[string]struct {
			Workers      int     `json:"workers"`
			Calls        int     `json:"calls"`
			ImagesPerSec float64 `json:"images_per_s"`
			Stages       map[string]struct {
				MedianMS float64 `json:"median_ms"`
				P95MS    float64 `json:"p95_ms"`
			} `json:"stages"`
			Total struct {
				MedianMS float64 `json:"median_ms"`
			} `json:"total"`
		} `json:"modes"`
	}
	out := mustFaced(t, "bench", "pipeline", "--images", images, "--calls", "4", "--max-images", "2", "--json")
	decodeJSON(t, out, &r, "backend", "detector", "landmarks", "embedder", "liveness", "image_size", "images", "model_mb", "modes")
	if r.Images != 2 {
		t.Errorf("images = %d, want --max-images 2", r.Images)
	}
	if r.ModelMB <= 0 {
		t.Errorf("model_mb = %v", r.ModelMB)
	}
	if len(r.Modes) != 2 {
		t.Errorf("modes %v, want single and all_cores", r.Modes)
	}
	for _, name := range []string{"single", "all_cores"} {
		m, ok := r.Modes[name]
		if !ok {
			t.Errorf("mode %s missing:\n%s", name, out)
			continue
		}
		t.Logf("%s: %.1f images/s with %d workers", name, m.ImagesPerSec, m.Workers)
		if m.Calls != 4 || m.Workers < 1 {
			t.Errorf("%s: %d calls on %d workers, want 4 on >= 1", name, m.Calls, m.Workers)
		}
		if !(m.ImagesPerSec > 0) {
			t.Errorf("%s: images_per_s = %v, want > 0", name, m.ImagesPerSec)
		}
		for _, st := range []string{"decode", "detect", "align", "embed"} {
			s, ok := m.Stages[st]
			if !ok {
				t.Errorf("%s: stage %s missing", name, st)
				continue
			}
			if s.MedianMS < 0 || s.P95MS < s.MedianMS {
				t.Errorf("%s/%s: median %v ms, p95 %v ms", name, st, s.MedianMS, s.P95MS)
			}
		}
		if !(m.Total.MedianMS > 0) {
			t.Errorf("%s: total median %v ms, want > 0", name, m.Total.MedianMS)
		}
	}

	text := mustFaced(t, "bench", "pipeline", "--images", images, "--calls", "2", "--max-images", "1")
	for _, want := range []string{"single", "all_cores", "images/s", "detect+align+embed"} {
		if !strings.Contains(text, want) {
			t.Errorf("text output lacks %q:\n%s", want, text)
		}
	}
}

func TestBenchPipelineErrors(t *testing.T) {
	images := filepath.Join(testenv.DataDir(t), "deepface")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--images", images, "--size", "big"}, "bad --size"},
		{[]string{"--images", t.TempDir()}, "no JPEG photos"},
	} {
		_, _, err := faced(t, append([]string{"bench", "pipeline"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("bench pipeline %v: err = %v, want %q", tc.args, err, tc.want)
		}
	}
}

// TestBenchHTTP runs the HTTP load generator briefly: every level must
// report requests without errors (no timing assertions).
func TestBenchHTTP(t *testing.T) {
	image := filepath.Join(testenv.DataDir(t), "deepface", "img1.jpg")
	out := mustFaced(t, "bench", "http", "--persons", "50", "--duration", "300ms", "--image", image, "--json")
	var rep httpReport
	decodeJSON(t, out, &rep, "persons", "pipeline_per_s", "loads")
	if rep.Persons != 50 || rep.PipelinePerSec <= 0 || len(rep.Loads) != 6 {
		t.Fatalf("report %+v", rep)
	}
	for _, l := range rep.Loads {
		if l.Requests == 0 || l.Errors != 0 {
			t.Errorf("%s at %d clients: %d requests, %d errors", l.Endpoint, l.Clients, l.Requests, l.Errors)
		}
	}
}
