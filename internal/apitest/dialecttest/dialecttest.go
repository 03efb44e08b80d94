// Package dialecttest sets up what the vendor dialects' tests share: a
// real API server on loopback over a fresh store (apitest.Fixture) with
// the dialects under test mounted, an inference queue that is always full,
// whole answers, a face-less photo and the native identify request of the
// cross-dialect tests. Assertions stay in each dialect's own tests.
//
// It is a package of its own, not part of apitest, because it imports
// package api, whose own tests use apitest.
package dialecttest

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/jpeg"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/facedhq/faced/api"
	"github.com/facedhq/faced/internal/apitest"
	"github.com/facedhq/faced/service"
)

// New is a dialect's constructor (users.New, findface.New...).
type New func(svc *service.Service, q api.Queue, logger *slog.Logger) http.Handler

// Mount is a dialect served below a prefix.
type Mount struct {
	Prefix string
	New    New
}

// Env is a running server with dialects mounted.
type Env struct {
	*apitest.Fixture
	Root   string // the server's root, where the native API is
	Base   string // the first dialect's base URL (Root + its prefix)
	Client *http.Client
}

// Serve starts a server over f (apitest.New) with the mounts; the
// dialects take inference slots from q, or from the server when q is nil.
func Serve(t testing.TB, f *apitest.Fixture, q api.Queue, mounts ...Mount) *Env {
	t.Helper()
	logger := slog.New(slog.DiscardHandler)
	srv := api.New(api.Config{Service: f.Svc, Logger: logger})
	if q == nil {
		q = srv
	}
	for _, m := range mounts {
		srv.Mount(m.Prefix, m.New(f.Svc, q, logger))
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	e := &Env{Fixture: f, Root: ts.URL, Client: &http.Client{Timeout: time.Minute}}
	if len(mounts) > 0 {
		e.Base = ts.URL + mounts[0].Prefix
	}
	return e
}

// Response is a whole answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Send sends req with client and reads the whole answer.
func Send(t testing.TB, client *http.Client, req *http.Request) Response {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return Response{resp.StatusCode, resp.Header, b}
}

// IdentifyNative sends photo to the native POST /v1/identify with the
// bearer key, as the cross-dialect tests do.
func (e *Env) IdentifyNative(t testing.TB, photo []byte, key string) Response {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"photo": base64.StdEncoding.EncodeToString(photo)})
	req, err := http.NewRequest("POST", e.Root+"/v1/identify", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	return Send(t, e.Client, req)
}

// BusyQueue is an inference queue that is always full.
type BusyQueue struct{}

// Acquire always fails with api.ErrBusy.
func (BusyQueue) Acquire(context.Context) (func(), error) { return nil, api.ErrBusy }

// GreyJPEG is a face-less photo: a plain grey 320×240 JPEG.
func GreyJPEG(t testing.TB) []byte {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 320, 240))
	for i := range img.Pix {
		img.Pix[i] = 128
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
