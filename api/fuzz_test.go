package api

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/jpeg"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"golang.org/x/image/draw"

	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

func encodeJPEG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 85}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var smallJPEGOnce struct {
	sync.Once
	data []byte
	err  error
}

// smallJPEG is img1.jpg (one face) scaled down to 160 px wide with Go's
// image code: a real photo the pipeline finds a face in, small enough for
// the mutator to work on.
func smallJPEG(t testing.TB) []byte {
	t.Helper()
	o := &smallJPEGOnce
	o.Do(func() {
		src, err := jpeg.Decode(bytes.NewReader(photo(t, "img1.jpg")))
		if err != nil {
			o.err = err
			return
		}
		b := src.Bounds()
		dst := image.NewRGBA(image.Rect(0, 0, 160, 160*b.Dy()/b.Dx()))
		draw.ApproxBiLinear.Scale(dst, dst.Bounds(), src, b, draw.Src, nil)
		var buf bytes.Buffer
		o.err = jpeg.Encode(&buf, dst, &jpeg.Options{Quality: 85})
		o.data = buf.Bytes()
	})
	if o.err != nil {
		t.Fatal(o.err)
	}
	return o.data
}

var fuzzSelectors = []string{"", "all", "biggest", "reject", "bogus", "ALL", "biggest ", "none"}

var fuzzEndpoints = []string{"/v1/detect", "/v1/verify", "/v1/identify", "/v1/liveness"}

// fuzzRequest builds one request from the fuzzer's flags. Bits 0-1 pick
// the endpoint, 2-4 the selector; bit 5 asks for every detect stage, or
// threshold=none on verify and identify (with n=3 there); bit 6 sets
// min_size on detect, threshold=0.9 on verify, record=true on identify;
// bit 7 sends the key as X-API-Key instead of a Bearer token.
func fuzzRequest(key string, body []byte, contentType string, flags uint8) *http.Request {
	ep := int(flags & 3)
	q := url.Values{}
	if sel := fuzzSelectors[(flags>>2)&7]; sel != "" {
		q.Set("mf_selector", sel)
	}
	if flags&32 != 0 {
		switch ep {
		case 0:
			for _, name := range []string{"attributes", "liveness", "landmarks68", "embedding"} {
				q.Set(name, "true")
			}
		case 1:
			q.Set("threshold", "none")
		case 2:
			q.Set("threshold", "none")
			q.Set("n", "3")
		}
	}
	if flags&64 != 0 {
		switch ep {
		case 0:
			q.Set("min_size", "40")
		case 1:
			q.Set("threshold", "0.9")
		case 2:
			q.Set("record", "true")
			q.Set("camera_id", "fuzz")
		}
	}
	req := httptest.NewRequest(http.MethodPost, fuzzEndpoints[ep]+"?"+q.Encode(), bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if flags&128 != 0 {
		req.Header.Set("X-API-Key", key)
	} else {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	return req
}

// TestSmallJPEGSeed makes sure the fuzz seed reaches the whole pipeline,
// not only the decoder: it must hold a face, on every endpoint.
func TestSmallJPEGSeed(t *testing.T) {
	e := newEnv(t, Config{})
	small := smallJPEG(t)
	if _, _, err := e.Svc.Enroll(context.Background(), service.EnrollRequest{Person: store.Person{Name: "seed"}, Photos: [][]byte{small}}); err != nil {
		t.Fatal(err)
	}
	h := e.Srv.Handler()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, fuzzRequest(e.Read, small, "image/jpeg", 32))
	var d wireDetect
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &d) != nil || len(d.Faces) != 1 || len(d.Faces[0].Embedding) != embedDim() {
		t.Fatalf("small seed: %d %s, want 200 with one face", rec.Code, rec.Body)
	}
	ct, form := multipartBody(t, map[string][]byte{"photo1": small, "photo2": small}, nil)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, fuzzRequest(e.Read, form, ct, 1|128))
	var v wireVerify
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &v) != nil || v.Verified == nil || !*v.Verified {
		t.Fatalf("small seed, verify with itself: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, fuzzRequest(e.Read, small, "image/jpeg", 2))
	var id wireIdentify
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &id) != nil || len(id.Faces) != 1 || len(id.Faces[0].Matches) != 1 {
		t.Fatalf("small seed, identify: %d %s", rec.Code, rec.Body)
	}
}

// FuzzRequest sends arbitrary bodies, content types and flags (endpoint
// and options, see fuzzRequest) through the whole handler with a valid
// read key: it must never panic (nor OpenCV abort), and must answer 200
// with JSON or an RFC 9457 problem with a code. A 500 means an input
// reached an error path the API does not classify.
func FuzzRequest(f *testing.F) {
	small := smallJPEG(f)
	grey := flatJPEG(f, 64, 64)
	formCT, form := multipartBody(f, map[string][]byte{"photo": small}, map[string]string{"embedding": "true"})
	pairCT, pair := multipartBody(f, map[string][]byte{"photo1": small, "photo2": grey}, map[string]string{"threshold": "low"})
	jsonPhoto := jsonBody(f, map[string]any{"photo": enc64(small), "n": 2, "gallery": []string{"default"}})
	jsonPair := jsonBody(f, map[string]any{"photo1": "data:image/jpeg;base64," + enc64(small), "photo2": enc64(small)})
	for _, s := range []struct {
		body  []byte
		ct    string
		flags uint8
	}{
		{small, "image/jpeg", 0},
		{small, "image/jpeg", 32},      // every stage
		{small, "image/png", 3 << 2},   // reject; the type is not trusted
		{small, "image/jpeg", 2 | 64},  // identify, record
		{small, "image/jpeg", 2 | 32},  // identify n=3, threshold none
		{small, "image/jpeg", 3 | 128}, // liveness, X-API-Key
		{small, "application/octet-stream", 64},
		{small[:len(small)/2], "image/jpeg", 0},
		{grey, "image/jpeg", 2},
		{form, formCT, 0},
		{form, "multipart/form-data; boundary=wrong", 0},
		{form, "multipart/form-data", 0},
		{form, "image/jpeg", 0},
		{pair, pairCT, 1},
		{pair, pairCT, 1 | 32},
		{jsonPhoto, "application/json", 2},
		{jsonPair, "application/json; charset=utf-8", 1 | 64},
		{[]byte(`{"photo":"https://example.com/x.jpg"}`), "application/json", 0},
		{[]byte(`{"photo1":"AAAA","person_id":"nobody"}`), "application/json", 1},
		{[]byte(`{"photo":[],"gallery":{"a":1}}`), "application/json", 2},
		{[]byte(`{"photo`), "application/json", 0},
		{small, "text/plain; charset=utf-8", 0},
		{small, "", 0},
		{nil, "", 0},
		{small, "image/jpeg; q=\"unterminated", 0},
		{noise(512), "image/jpeg", 0},
		{[]byte{}, "image/jpeg", 0},
		{[]byte{0xFF, 0xD8, 0xFF}, "image/jpeg", 0},
		{hugePNG(f), "image/png", 0},
	} {
		f.Add(s.body, s.ct, s.flags)
	}

	e := newEnv(f, Config{MaxBody: 256 << 10}) // keeps every input cheap; 413 gets exercised too
	if _, _, err := e.Svc.Enroll(context.Background(), service.EnrollRequest{Person: store.Person{Name: "seed"}, Photos: [][]byte{small}}); err != nil {
		f.Fatal(err)
	}
	h := e.Srv.Handler()
	f.Fuzz(func(t *testing.T, body []byte, contentType string, flags uint8) {
		start := time.Now()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, fuzzRequest(e.Read, body, contentType, flags))
		// Not a benchmark: a bound so loose that only a pathological
		// input (a CPU bomb in a small body) can cross it.
		if d := time.Since(start); d > 20*time.Second {
			t.Fatalf("request took %v: status %d for %d bytes of %q, flags %#x", d, rec.Code, len(body), contentType, flags)
		}
		b := rec.Body.Bytes()
		switch rec.Code {
		case 200:
			var r map[string]json.RawMessage
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Fatalf("200 with Content-Type %q", ct)
			}
			if err := json.Unmarshal(b, &r); err != nil {
				t.Fatalf("200 with body %q: %v", b, err)
			}
			key := "faces"
			if flags&3 == 1 {
				key = "pairs"
			}
			if list := r[key]; len(list) == 0 || list[0] != '[' {
				t.Fatalf("200 without a %q array: %s", key, b)
			}
		case 400, 404, 413, 415, 429, 503:
			if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("%d with Content-Type %q: %s", rec.Code, ct, b)
			}
			var p Problem
			if err := json.Unmarshal(b, &p); err != nil || p.Code == "" || p.Status != rec.Code {
				t.Fatalf("%d with problem %q (%v): want a code and the status", rec.Code, b, err)
			}
		default:
			t.Fatalf("status %d for %d bytes of %q, flags %#x: %s", rec.Code, len(body), contentType, flags, b)
		}
	})
}
