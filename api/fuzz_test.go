package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/internal/testenv"
)

// smallJPEG is img1.jpg (one face) re-framed to 160x120: a real photo the
// pipeline finds a face in, small enough for the mutator to work on.
func smallJPEG(t testing.TB) []byte {
	t.Helper()
	b, err := face.Reframe(testenv.ReadPhoto(t, "deepface/img1.jpg"), 160, 120)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSmallJPEGSeed makes sure the fuzz seed reaches the whole pipeline,
// not only the decoder: it must hold a face.
func TestSmallJPEGSeed(t *testing.T) {
	rec := detectRecorded(newServer().Handler(), smallJPEG(t), "image/jpeg", 0x0f)
	var r detectResponse
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &r) != nil || len(r.Faces) != 1 {
		t.Fatalf("small seed: %d %s, want 200 with one face", rec.Code, rec.Body)
	}
}

var fuzzSelectors = []string{"", "all", "biggest", "reject", "bogus", "ALL", "biggest ", "none"}

// detectRecorded sends one POST /v1/detect through the handler. The bits
// of flags choose the query: 1 attributes, 2 liveness, 4 landmarks68,
// 8 embedding, 16-64 the selector, 128 a min_size.
func detectRecorded(h http.Handler, body []byte, contentType string, flags uint8) *httptest.ResponseRecorder {
	q := url.Values{}
	for bit, name := range []string{"attributes", "liveness", "landmarks68", "embedding"} {
		if flags&(1<<bit) != 0 {
			q.Set(name, "true")
		}
	}
	if sel := fuzzSelectors[(flags>>4)&7]; sel != "" {
		q.Set("mf_selector", sel)
	}
	if flags&128 != 0 {
		q.Set("min_size", "40")
	}
	req := httptest.NewRequest(http.MethodPost, "/v1/detect?"+q.Encode(), bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// FuzzDetectRequest sends arbitrary bodies, content types and query flags
// to POST /v1/detect: the handler must never panic (nor OpenCV abort), and
// must answer 200 with faces or an RFC 9457 problem with a code and a
// client-error status. A 500 means an input reached an error path the API
// does not classify.
func FuzzDetectRequest(f *testing.F) {
	small := smallJPEG(f)
	formCT, form := multipartBody(f, map[string][]byte{"photo": small})
	f.Add(small, "image/jpeg", uint8(0))
	f.Add(small, "image/jpeg", uint8(0x0f)) // every stage
	f.Add(small, "image/png", uint8(0x30))  // reject; the decoder sniffs, the type is not trusted
	f.Add(small, "application/octet-stream", uint8(0x40|0x80))
	f.Add(small[:len(small)/2], "image/jpeg", uint8(0))
	f.Add(form, formCT, uint8(0x01))
	f.Add(form, "multipart/form-data; boundary=wrong", uint8(0))
	f.Add(form, "multipart/form-data", uint8(0))
	f.Add(form, "image/jpeg", uint8(0))
	f.Add(small, "text/plain; charset=utf-8", uint8(0))
	f.Add(small, "", uint8(0))
	f.Add(small, "image/jpeg; q=\"unterminated", uint8(0))
	f.Add(noise(512), "image/jpeg", uint8(0))
	f.Add([]byte{}, "image/jpeg", uint8(0))
	f.Add([]byte{0xFF, 0xD8, 0xFF}, "image/jpeg", uint8(0))

	srv := newServer()
	srv.MaxBody = 256 << 10 // keeps every input cheap; the 413 path gets exercised too
	h := srv.Handler()
	f.Fuzz(func(t *testing.T, body []byte, contentType string, flags uint8) {
		start := time.Now()
		rec := detectRecorded(h, body, contentType, flags)
		// Not a benchmark: a bound so loose that only a pathological
		// input (a CPU bomb in a small body) can cross it.
		if d := time.Since(start); d > 20*time.Second {
			t.Fatalf("request took %v: status %d for %d bytes of %q, flags %#x", d, rec.Code, len(body), contentType, flags)
		}
		switch rec.Code {
		case 200:
			var r detectResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil || !bytes.HasPrefix(rec.Body.Bytes(), []byte(`{"faces":[`)) {
				t.Fatalf("200 with body %q (%v)", rec.Body, err)
			}
			for i, fc := range r.Faces {
				if len(fc.Landmarks) != 5 || fc.Box.X2 <= fc.Box.X1 || fc.Box.Y2 <= fc.Box.Y1 {
					t.Fatalf("face %d: %+v", i, fc)
				}
			}
		case 400, 413, 415:
			if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("%d with Content-Type %q", rec.Code, ct)
			}
			var p problemJSON
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Code == "" || p.Status != rec.Code {
				t.Fatalf("%d with problem %q (%v): want a code and the status", rec.Code, rec.Body, err)
			}
		default:
			t.Fatalf("status %d for %d bytes of %q, flags %#x: %s", rec.Code, len(body), contentType, flags, rec.Body)
		}
	})
}
