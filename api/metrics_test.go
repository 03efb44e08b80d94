package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/facedhq/faced/daemon"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// sample is one line of the text exposition format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

// parseExposition reads the Prometheus text format (no timestamps, which
// client_golang does not write), enough for these tests.
func parseExposition(t *testing.T, body string) []sample {
	t.Helper()
	var out []sample
	for line := range strings.SplitSeq(body, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			t.Fatalf("bad line %q", line)
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			t.Fatalf("bad value in %q: %v", line, err)
		}
		s := sample{labels: map[string]string{}, value: v}
		series := line[:sp]
		name, rest, hasLabels := strings.Cut(series, "{")
		s.name = name
		if hasLabels {
			rest = strings.TrimSuffix(rest, "}")
			for rest != "" {
				k, r, ok := strings.Cut(rest, `="`)
				if !ok {
					t.Fatalf("bad labels in %q", line)
				}
				var val strings.Builder
				i := 0
				for ; i < len(r) && r[i] != '"'; i++ {
					if r[i] == '\\' && i+1 < len(r) {
						i++
						switch r[i] {
						case 'n':
							val.WriteByte('\n')
						default:
							val.WriteByte(r[i])
						}
						continue
					}
					val.WriteByte(r[i])
				}
				s.labels[k] = val.String()
				rest = strings.TrimPrefix(r[min(i+1, len(r)):], ",")
			}
		}
		out = append(out, s)
	}
	return out
}

// metricValue returns the value of the series with exactly these labels.
func metricValue(samples []sample, name string, labels map[string]string) (float64, bool) {
	for _, s := range samples {
		if s.name != name || len(s.labels) != len(labels) {
			continue
		}
		match := true
		for k, v := range labels {
			match = match && s.labels[k] == v
		}
		if match {
			return s.value, true
		}
	}
	return 0, false
}

func scrape(t *testing.T, h http.Handler) []sample {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %q: %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	return parseExposition(t, rec.Body.String())
}

// TestMetrics scrapes a real server after some traffic.
func TestMetrics(t *testing.T) {
	e := newEnv(t, Config{})
	vision.Pipeline.SetObserver(e.Srv.ObserveInference)
	t.Cleanup(func() { vision.Pipeline.SetObserver(nil) })
	ctx := context.Background()
	for _, p := range []struct{ id, photo string }{{"a", "img1.jpg"}, {"b", "img13.jpg"}} {
		if _, _, err := e.Svc.Enroll(ctx, service.EnrollRequest{Person: store.Person{ID: p.id}, Photos: [][]byte{photo(t, p.photo)}}); err != nil {
			t.Fatal(err)
		}
	}
	img := photo(t, "img2.jpg")
	for _, c := range []struct {
		path, key string
		want      int
	}{
		{"/v1/detect", e.Read, http.StatusOK},
		{"/v1/identify", e.Read, http.StatusOK},
		{"/v1/detect", "", http.StatusUnauthorized},
	} {
		if status, _, body := e.do(t, "POST", c.path, c.key, "image/jpeg", img); status != c.want {
			t.Fatalf("POST %s: %d, want %d: %s", c.path, status, c.want, body)
		}
	}
	for _, path := range []string{"/healthz", "/v1/persons/a-secret-id/nothing-here"} {
		e.do(t, "GET", path, "", "", nil)
	}

	status, hdr, body := e.do(t, "GET", "/metrics", "", "", nil)
	if status != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics without a key: %d %q", status, hdr.Get("Content-Type"))
	}
	text := string(body)
	samples := parseExposition(t, text)
	atLeast := func(name string, labels map[string]string, min float64) {
		t.Helper()
		v, ok := metricValue(samples, name, labels)
		if !ok {
			t.Errorf("no series %s%v", name, labels)
		} else if v < min {
			t.Errorf("%s%v = %v, want >= %v", name, labels, v, min)
		}
	}
	equal := func(name string, labels map[string]string, want float64) {
		t.Helper()
		if v, ok := metricValue(samples, name, labels); !ok || v != want {
			t.Errorf("%s%v = %v (present %v), want %v", name, labels, v, ok, want)
		}
	}
	atLeast("faced_http_requests_total", map[string]string{"route": "POST /v1/detect", "code": "200"}, 1)
	atLeast("faced_http_requests_total", map[string]string{"route": "POST /v1/identify", "code": "200"}, 1)
	atLeast("faced_http_requests_total", map[string]string{"route": "POST /v1/detect", "code": "401"}, 1)
	atLeast("faced_http_requests_total", map[string]string{"route": "GET /healthz", "code": "200"}, 1)
	atLeast("faced_http_requests_total", map[string]string{"route": "unmatched", "code": "404"}, 1)
	atLeast("faced_http_request_duration_seconds_count", map[string]string{"route": "POST /v1/detect"}, 2)
	atLeast("faced_http_request_duration_seconds_sum", map[string]string{"route": "POST /v1/identify"}, 1e-6)
	// detect and identify embed the probe (Enroll runs too, through the
	// service, outside HTTP).
	atLeast("faced_inference_duration_seconds_count", map[string]string{"model": "arcface-r512"}, 2)
	atLeast("faced_inference_duration_seconds_sum", map[string]string{"model": daemon.DefaultVision().Detector}, 1e-6)
	equal("faced_gallery_faces", map[string]string{"gallery": "default"}, 2)
	equal("faced_faces", nil, 2)
	equal("faced_outbox_depth", nil, 0)
	equal("faced_outbox_bytes", nil, 0)
	equal("faced_outbox_dropped_total", nil, 0)
	equal("faced_inference_queue_waiting", nil, 0)
	equal("faced_inference_in_flight", nil, 0)
	equal("faced_inference_busy_total", nil, 0)
	atLeast("go_goroutines", nil, 1)
	atLeast("process_start_time_seconds", nil, 1)
	// Raw paths, ids and keys never become labels.
	for _, leak := range []string{"a-secret-id", "/v1/persons/a", e.Read} {
		if strings.Contains(text, leak) {
			t.Errorf("metrics contain %q", leak)
		}
	}
}

// TestMetricsNotReady: /metrics is served before the service exists,
// without the service's gauges, and counts 429s from the queue.
func TestMetricsNotReady(t *testing.T) {
	s := New(Config{MaxInFlight: 1, MaxQueue: 1})
	h := s.Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("readyz: %d", rec.Code)
	}
	// Fill the slot and the queue by hand, then one more is refused.
	release, err := s.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s.queued.Add(1)
	if _, err := s.acquire(context.Background()); !errors.Is(err, errBusy) {
		t.Fatalf("acquire: %v, want busy", err)
	}
	samples := scrape(t, h)
	s.queued.Add(-1)
	release()
	for name, want := range map[string]float64{
		"faced_inference_busy_total":    1,
		"faced_inference_queue_waiting": 1,
		"faced_inference_in_flight":     1,
	} {
		if v, ok := metricValue(samples, name, nil); !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", name, v, ok, want)
		}
	}
	if v, ok := metricValue(samples, "faced_http_requests_total", map[string]string{"route": "GET /readyz", "code": "503"}); !ok || v != 1 {
		t.Errorf("readyz 503 counted %v (present %v)", v, ok)
	}
	for _, s := range samples {
		if strings.HasPrefix(s.name, "faced_gallery") || strings.HasPrefix(s.name, "faced_faces") || strings.HasPrefix(s.name, "faced_outbox") {
			t.Errorf("service gauge %s served while not ready", s.name)
		}
	}
	// Two servers in one process keep separate registries.
	other := scrape(t, New(Config{}).Handler())
	if v, ok := metricValue(other, "faced_inference_busy_total", nil); !ok || v != 0 {
		t.Errorf("a second server's busy counter = %v (present %v)", v, ok)
	}
}
