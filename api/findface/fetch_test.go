package findface_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/facedhq/faced/api"
	"github.com/facedhq/faced/api/findface"
	"github.com/facedhq/faced/internal/apitest"
)

// TestPhotoURLFromAllowedHost: FindFace clients send photo URLs; faced
// fetches them only from allow-listed hosts.
func TestPhotoURLFromAllowedHost(t *testing.T) {
	img := photo(t, "img1.jpg")
	host := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(img) }))
	defer host.Close()
	u, _ := url.Parse(host.URL)

	f := apitest.New(t, vision)
	logger := slog.New(slog.DiscardHandler)
	srv := api.New(api.Config{Service: f.Svc, Logger: logger, Fetch: api.FetchConfig{AllowHosts: []string{u.Host}}})
	srv.Mount("/compat/findface", findface.New(f.Svc, srv, logger))
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	// Another loopback host, not allow-listed: it must never be asked.
	var otherHits atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { otherHits.Add(1); w.Write(img) }))
	defer other.Close()

	var last errorBody
	detect := func(photoURL string) int {
		body, _ := json.Marshal(map[string]string{"photo": photoURL})
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/compat/findface/v1/detect/", bytes.NewReader(body))
		req.Header.Set("Authorization", "Token "+f.Read)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		last = errorBody{}
		json.NewDecoder(resp.Body).Decode(&last)
		return resp.StatusCode
	}
	if got := detect(host.URL + "/face.jpg"); got != http.StatusOK {
		t.Errorf("allow-listed URL: %d", got)
	}
	for _, u := range []string{"http://169.254.169.254/latest/meta-data", other.URL + "/face.jpg"} {
		if got := detect(u); got != http.StatusBadRequest || last.ErrorCode != findface.CodeURLNotAllowed {
			t.Errorf("other host %s: %d %+v, want 400 %s", u, got, last, findface.CodeURLNotAllowed)
		}
	}
	if n := otherHits.Load(); n != 0 {
		t.Errorf("the other host was asked %d times", n)
	}
}
