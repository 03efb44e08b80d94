package api

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/facedhq/faced/internal/apitest"
)

// serve runs h on loopback and returns its URL.
func serve(t testing.TB, h http.Handler) string {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL
}

func TestBodyTooLarge(t *testing.T) {
	e := newEnv(t, Config{MaxBody: 1000})
	small := img12(t) // 20 kB: fits the socket buffers, so the client is done sending
	ct, form := multipartBody(t, map[string][]byte{"photo": small}, nil)
	for _, tc := range []struct {
		name, ct string
		body     []byte
	}{
		{"raw", "image/jpeg", small},
		{"octet-stream", "application/octet-stream", small},
		{"multipart", ct, form},
		{"json", "application/json", jsonBody(t, map[string]any{"photo": enc64(small)})},
		// Parameters alone can be too large too.
		{"json without photo", "application/json", jsonBody(t, map[string]any{"note": strings.Repeat("x", 2000)})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/v1/detect", "/v1/identify"} {
				status, hdr, body := e.call(t, path, tc.ct, tc.body)
				expectProblem(t, status, hdr, body, http.StatusRequestEntityTooLarge, "too_large")
			}
		})
	}
	// A body of exactly MaxBody bytes is read, and judged as a photo.
	status, hdr, body := e.call(t, "/v1/detect", "image/jpeg", small[:1000])
	expectProblem(t, status, hdr, body, http.StatusBadRequest, "bad_image")
	// The connection is still usable after a 413.
	if status, _, body := e.do(t, http.MethodGet, "/v1/device", e.Read, "", nil); status != http.StatusOK {
		t.Errorf("device after 413: %d %s", status, body)
	}
}

// post is a request for goroutines other than the test's (which may not
// call t.Fatal): it returns the status, or -1 when the request failed.
func (e *env) post(path, key, contentType string, body []byte) int {
	req, err := http.NewRequest(http.MethodPost, e.URL+path, bytes.NewReader(body))
	if err != nil {
		return -1
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return -1
	}
	return resp.StatusCode
}

// TestBusy fills the single inference slot and the one-place queue by
// hand: the next inference request is refused at once with 429.
func TestBusy(t *testing.T) {
	e := newEnv(t, Config{MaxInFlight: 1, MaxQueue: 1})
	s := e.Srv
	release, err := s.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// A waiter in the queue.
	waitCtx, cancelWait := context.WithCancel(context.Background())
	waited := make(chan error, 1)
	go func() {
		rel, err := s.acquire(waitCtx)
		if err == nil {
			rel()
		}
		waited <- err
	}()
	for deadline := time.Now().Add(5 * time.Second); s.queued.Load() != 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the waiter never queued")
		}
	}

	for _, path := range []string{"/v1/detect", "/v1/verify", "/v1/identify", "/v1/liveness"} {
		start := time.Now()
		status, hdr, body := e.call(t, path, "image/jpeg", img12(t))
		expectProblem(t, status, hdr, body, http.StatusTooManyRequests, "busy")
		if hdr.Get("Retry-After") == "" {
			t.Errorf("%s: 429 without Retry-After", path)
		}
		// "At once": not after waiting for the slot, which is never
		// released here; 10 s only guards against a hang.
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("%s: 429 took %v, want it at once", path, d)
		}
	}
	if n := s.queued.Load(); n != 1 {
		t.Errorf("queued = %d after the refusals, want 1 (the waiter)", n)
	}
	// Non-inference routes still answer.
	if status, _, body := e.do(t, http.MethodGet, "/v1/device", e.Read, "", nil); status != http.StatusOK {
		t.Errorf("device while busy: %d %s", status, body)
	}

	// The waiter gives up; a queued request whose context ends leaves the
	// queue.
	cancelWait()
	if err := <-waited; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled waiter: %v", err)
	}
	if n := s.queued.Load(); n != 0 {
		t.Errorf("queued = %d after the waiter left, want 0", n)
	}
	// Slot taken, queue empty: a request waits, and gets the slot when it
	// is released.
	done := make(chan int, 1)
	img := img12(t)
	go func() { done <- e.post("/v1/detect", e.Read, "image/jpeg", img) }()
	for deadline := time.Now().Add(5 * time.Second); s.queued.Load() != 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the request never queued")
		}
	}
	release()
	if status := <-done; status != http.StatusOK {
		t.Errorf("queued request: %d, want 200", status)
	}
	if n := len(s.slots); n != 0 {
		t.Errorf("%d slots held after every request ended", n)
	}
}

// TestBusyConcurrent floods a one-slot server: every request gets 200 or
// 429, none waits forever, and the slots are all returned.
func TestBusyConcurrent(t *testing.T) {
	e := newEnv(t, Config{MaxInFlight: 1, MaxQueue: 1})
	small := smallJPEG(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	counts := map[int]int{}
	for range 12 {
		wg.Go(func() {
			status := e.post("/v1/detect", e.Read, "image/jpeg", small)
			mu.Lock()
			counts[status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if counts[200] == 0 || counts[200]+counts[429] != 12 {
		t.Errorf("statuses %v, want only 200 and 429, some 200", counts)
	}
	t.Logf("statuses: %v", counts)
	if len(e.Srv.slots) != 0 || e.Srv.queued.Load() != 0 {
		t.Errorf("after the flood: %d slots held, %d queued", len(e.Srv.slots), e.Srv.queued.Load())
	}
}

func TestAcquireQueue(t *testing.T) {
	s := New(Config{MaxInFlight: 2, MaxQueue: 1})
	ctx := context.Background()
	r1, err1 := s.acquire(ctx)
	r2, err2 := s.acquire(ctx)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	// The queue is full with one waiter, which then gives up.
	waitCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	got := make(chan error, 1)
	go func() {
		_, err := s.acquire(waitCtx)
		got <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); s.queued.Load() != 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the waiter never queued")
		}
	}
	if _, err := s.acquire(ctx); !errors.Is(err, errBusy) {
		t.Errorf("third acquire: %v, want busy", err)
	}
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Errorf("waiter: %v, want cancelled", err)
	}
	if p := problemFor(context.DeadlineExceeded); p.Status != http.StatusServiceUnavailable || p.Code != "timeout" {
		t.Errorf("deadline maps to %+v", p)
	}
	r1()
	r3, err := s.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r2()
	r3()
	if len(s.slots) != 0 || s.queued.Load() != 0 {
		t.Errorf("%d slots, %d queued at the end", len(s.slots), s.queued.Load())
	}
}

func TestNotReady(t *testing.T) {
	e := newEnv(t, Config{})
	s := New(Config{})
	url := serve(t, s.Handler())
	get := func(method, path, key string) (int, http.Header, []byte) {
		return (&env{URL: url}).do(t, method, path, key, "image/jpeg", img12(t))
	}
	if status, _, body := get(http.MethodGet, "/healthz", ""); status != http.StatusOK {
		t.Errorf("healthz while loading: %d %s", status, body)
	}
	for _, tc := range []struct{ method, path, key string }{
		{http.MethodGet, "/readyz", ""},
		{http.MethodGet, "/v1/device", e.Read},
		{http.MethodPost, "/v1/detect", e.Read},
		{http.MethodPost, "/v1/identify", ""}, // no store to check a key against yet
	} {
		status, hdr, body := get(tc.method, tc.path, tc.key)
		expectProblem(t, status, hdr, body, http.StatusServiceUnavailable, "not_ready")
		if hdr.Get("Retry-After") == "" {
			t.Errorf("%s: 503 without Retry-After", tc.path)
		}
	}
	s.SetService(e.Svc)
	if status, _, body := get(http.MethodGet, "/readyz", ""); status != http.StatusOK {
		t.Errorf("readyz once ready: %d %s", status, body)
	}
	if status, _, body := get(http.MethodPost, "/v1/detect", e.Read); status != http.StatusOK {
		t.Errorf("detect once ready: %d %s", status, body)
	}
}

// TestRequestTimeout: a request that outlives RequestTimeout ends with 503
// timeout (the inference is interrupted, not finished for nobody).
func TestRequestTimeout(t *testing.T) {
	e := newEnv(t, Config{RequestTimeout: time.Millisecond})
	start := time.Now()
	status, hdr, body := e.call(t, "/v1/detect?embedding=true&attributes=true", "image/jpeg", photo(t, "couple.jpg"))
	// The timeout is also the body's read deadline: within 1 ms the
	// deadline may pass while the body is read (408), else in the
	// pipeline (503). The loop below, without a connection deadline,
	// checks the pipeline's.
	if status == http.StatusRequestTimeout {
		expectProblem(t, status, hdr, body, http.StatusRequestTimeout, "body_timeout")
	} else {
		expectProblem(t, status, hdr, body, http.StatusServiceUnavailable, "timeout")
		if hdr.Get("Retry-After") == "" {
			t.Error("503 timeout without Retry-After")
		}
	}
	t.Logf("timed out after %v", time.Since(start))
	// Health checks are not bounded by it.
	if status, _, body := e.do(t, http.MethodGet, "/readyz", "", "", nil); status != http.StatusOK {
		t.Errorf("readyz: %d %s", status, body)
	}

	// Deadlines landing anywhere in the pipeline: 200 or 503 timeout,
	// nothing else (under -race this also catches an interrupted inference
	// touching freed runtime state).
	couple := photo(t, "couple.jpg")
	for _, d := range []time.Duration{2, 5, 10, 20, 40, 80, 160, 320} {
		s := New(Config{Service: e.Svc, RequestTimeout: d * time.Millisecond})
		req := httptest.NewRequest(http.MethodPost, "/v1/detect?embedding=true&attributes=true&landmarks68=true", bytes.NewReader(couple))
		req.Header.Set("Content-Type", "image/jpeg")
		req.Header.Set("Authorization", "Bearer "+e.Read)
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			expectProblem(t, rec.Code, rec.Header(), rec.Body.Bytes(), http.StatusServiceUnavailable, "timeout")
		}
		t.Logf("timeout %v: %d", d*time.Millisecond, rec.Code)
	}
}

// TestClientGone: a request whose client has gone is answered 499
// canceled (nginx's code; the client never reads it, the log does).
func TestClientGone(t *testing.T) {
	e := newEnv(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/v1/detect", bytes.NewReader(img12(t)))
	req.Header.Set("Content-Type", "image/jpeg")
	req.Header.Set("Authorization", "Bearer "+e.Read)
	rec := httptest.NewRecorder()
	e.Srv.Handler().ServeHTTP(rec, req)
	expectProblem(t, rec.Code, rec.Header(), rec.Body.Bytes(), 499, "canceled")
}

// TestMethodsAndRoutes: unknown paths and methods get problem+json 404
// not_found and 405 method_not_allowed, with Allow on a 405.
func TestMethodsAndRoutes(t *testing.T) {
	e := newEnv(t, Config{})
	for _, tc := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{http.MethodGet, "/v1/detect", http.StatusMethodNotAllowed, "POST"},
		{http.MethodPut, "/v1/detect", http.StatusMethodNotAllowed, "POST"},
		{http.MethodPost, "/v1/device", http.StatusMethodNotAllowed, "GET"},
		{http.MethodPost, "/healthz", http.StatusMethodNotAllowed, "GET"},
		{http.MethodGet, "/v1/nothing", http.StatusNotFound, ""},
		{http.MethodGet, "/", http.StatusNotFound, ""},
		{http.MethodGet, "/v2/detect", http.StatusNotFound, ""},
	} {
		status, hdr, body := e.do(t, tc.method, tc.path, e.Read, "", nil)
		if status != tc.status || !strings.Contains(hdr.Get("Allow"), tc.allow) {
			t.Errorf("%s %s: %d (Allow %q) %s, want %d", tc.method, tc.path, status, hdr.Get("Allow"), body, tc.status)
		}
		want := map[int]string{http.StatusNotFound: "not_found", http.StatusMethodNotAllowed: "method_not_allowed"}[tc.status]
		if code := problemCode(t, hdr, body); code != want {
			t.Errorf("%s %s: code %s, want %s", tc.method, tc.path, code, want)
		}
	}
	// HEAD of a GET route is served.
	if status, _, _ := e.do(t, http.MethodHead, "/healthz", "", "", nil); status != http.StatusOK {
		t.Errorf("HEAD /healthz: %d", status)
	}
	routes := e.Srv.Routes()
	for _, want := range []string{"GET /healthz", "GET /readyz", "GET /v1/device", "POST /v1/detect", "POST /v1/verify", "POST /v1/identify", "POST /v1/liveness"} {
		found := false
		for _, r := range routes {
			found = found || r == want
		}
		if !found {
			t.Errorf("Routes() %v lacks %s", routes, want)
		}
	}
}

func TestRequestID(t *testing.T) {
	e := newEnv(t, Config{})
	hex16 := regexp.MustCompile(`^[0-9a-f]{16}$`)
	for name, tc := range map[string]struct{ sent, want string }{
		"kept":      {"abc-123", "abc-123"},
		"generated": {"", ""},
		"too long":  {strings.Repeat("a", 65), ""},
	} {
		t.Run(name, func(t *testing.T) {
			hdr := map[string]string{}
			if tc.sent != "" {
				hdr["X-Request-ID"] = tc.sent
			}
			// Failures carry the id too.
			_, rh, _ := e.doHeaders(t, http.MethodGet, "/v1/device", hdr, nil)
			got := rh.Get("X-Request-ID")
			if tc.want != "" && got != tc.want || tc.want == "" && !hex16.MatchString(got) {
				t.Errorf("sent %q, got X-Request-ID %q", tc.sent, got)
			}
		})
	}
}

// stallBody sends a request's headers announcing a 1 MB body, and a few
// bytes of it, then stalls; it returns the status the server answers
// with, waiting at most 60 s.
func stallBody(t *testing.T, base, path string, header map[string]string) int {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", path, u.Host, 1<<20)
	for k, v := range header {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	b.WriteString("\r\n\xff\xd8\xff\xe0")
	if _, err := io.WriteString(c, b.String()); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%s with a stalled body: no answer: %v", path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestBodyDeadline: a body that does not arrive within RequestTimeout ends
// the request (408 body_timeout natively) instead of holding its
// connection and goroutine forever; vendor dialects' bodies get the same
// deadline. The stalled body never takes an inference slot. The deadline
// bounds the body only: a handler still running after it, its body read,
// is not cancelled.
func TestBodyDeadline(t *testing.T) {
	f := apitest.New(t, vision)
	s := New(Config{Service: f.Svc, RequestTimeout: 2 * time.Second, MaxInFlight: 1})
	readErr := make(chan error, 1)
	s.Mount("/compat/echo", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		readErr <- err
		http.Error(w, "unreadable body", http.StatusBadRequest)
	}))
	s.Mount("/compat/slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case <-r.Context().Done():
			http.Error(w, "cancelled after the body was read", http.StatusServiceUnavailable)
		case <-time.After(5 * time.Second): // well past the body's deadline
			w.WriteHeader(http.StatusOK)
		}
	}))
	base := serve(t, s.Handler())
	status := stallBody(t, base, "/v1/detect", map[string]string{"Authorization": "Bearer " + f.Read, "Content-Type": "image/jpeg"})
	if status != http.StatusRequestTimeout {
		t.Errorf("native stalled body: %d, want 408", status)
	}
	if n := len(s.slots); n != 0 {
		t.Errorf("%d inference slots held after the stalled request", n)
	}
	if status := stallBody(t, base, "/compat/echo/x", nil); status != http.StatusBadRequest {
		t.Errorf("dialect stalled body: %d, want its 400", status)
	}
	if err := <-readErr; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("dialect body read: %v, want the read deadline", err)
	}
	resp, err := http.Post(base+"/compat/slow/x", "text/plain", strings.NewReader("a body read at once"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("handler running past the body deadline: %d %s, want 200", resp.StatusCode, b)
	}
}
