package api

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// photoHost serves photos on loopback: /face.jpg, /big (5 MB),
// /missing (404), /slow (stalls), /away (redirects to another host).
func photoHost(t *testing.T) *httptest.Server {
	img := photo(t, "img1.jpg")
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/face.jpg":
			w.Write(img)
		case "/big":
			w.Write(bytes.Repeat([]byte{0xff}, 5<<20))
		case "/slow":
			time.Sleep(time.Second)
		case "/away":
			http.Redirect(w, r, "http://elsewhere.invalid/face.jpg", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(ts.Close)
	return ts
}

func TestPhotoURLs(t *testing.T) {
	host := photoHost(t)
	u, _ := url.Parse(host.URL)
	e := newEnv(t, Config{Fetch: FetchConfig{AllowHosts: []string{u.Host}, MaxBytes: 4 << 20, Timeout: 300 * time.Millisecond}})
	for _, tc := range []struct {
		url        string
		wantStatus int
		wantCode   string
	}{
		{host.URL + "/face.jpg", http.StatusOK, ""},
		{host.URL + "/big", http.StatusRequestEntityTooLarge, "too_large"},
		{host.URL + "/missing", http.StatusBadRequest, "fetch_failed"},
		{host.URL + "/slow", http.StatusBadRequest, "fetch_failed"},
		{host.URL + "/away", http.StatusBadRequest, "fetch_failed"},
		{strings.Replace(host.URL, "127.0.0.1", "localhost", 1) + "/face.jpg", http.StatusBadRequest, "url_not_allowed"},
		{"http://169.254.169.254/latest/meta-data", http.StatusBadRequest, "url_not_allowed"},
		{"ftp://" + u.Host + "/face.jpg", http.StatusBadRequest, "bad_photo"},
	} {
		status, hdr, body := e.do(t, "POST", "/v1/detect", e.Read, "application/json", jsonBody(t, map[string]string{"photo": tc.url}))
		if status != tc.wantStatus {
			t.Errorf("%s: status %d, want %d: %s", tc.url, status, tc.wantStatus, body)
			continue
		}
		if tc.wantCode != "" {
			if code := problemCode(t, hdr, body); code != tc.wantCode {
				t.Errorf("%s: code %s, want %s", tc.url, code, tc.wantCode)
			}
		} else if !strings.Contains(string(body), `"faces":[{`) {
			t.Errorf("%s: no face in %s", tc.url, body)
		}
	}
}

func TestPhotoURLsOffByDefault(t *testing.T) {
	host := photoHost(t)
	e := newEnv(t, Config{})
	status, hdr, body := e.do(t, "POST", "/v1/detect", e.Read, "application/json", jsonBody(t, map[string]string{"photo": host.URL + "/face.jpg"}))
	if status != http.StatusBadRequest || problemCode(t, hdr, body) != "bad_photo" {
		t.Fatalf("fetch without allow-list: %d %s", status, body)
	}
}
