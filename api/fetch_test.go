package api

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// fetchTimeout is the photo hosts' fetch budget in these tests: long
// enough that no legitimate fetch on a loaded machine comes near it.
const fetchTimeout = 10 * time.Second

// photoHost is a loopback photo server that counts the requests per path:
// /face.jpg, /big (5 MB), /3mb, /missing (404), /slow (stalls until the
// client gives up), /late (a face after 6 s), /away (redirects to a second
// loopback server, not allow-listed, whose hits are counted under
// "elsewhere").
type photoHost struct {
	*httptest.Server
	mu   sync.Mutex
	hits map[string]int
}

func newPhotoHost(t *testing.T) *photoHost {
	img := photo(t, "img1.jpg")
	h := &photoHost{hits: map[string]int{}}
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.count("elsewhere")
		w.Write(img)
	}))
	t.Cleanup(elsewhere.Close)
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.count(r.URL.Path)
		switch r.URL.Path {
		case "/face.jpg":
			w.Write(img)
		case "/big":
			w.Write(bytes.Repeat([]byte{0xff}, 5<<20))
		case "/3mb":
			w.Write(bytes.Repeat([]byte{0xff}, 3<<20))
		case "/slow":
			select {
			case <-r.Context().Done():
			case <-time.After(3 * fetchTimeout):
			}
		case "/late":
			select {
			case <-r.Context().Done():
				return
			case <-time.After(6 * time.Second):
			}
			w.Write(img)
		case "/away":
			http.Redirect(w, r, elsewhere.URL+"/face.jpg", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *photoHost) count(path string) {
	h.mu.Lock()
	h.hits[path]++
	h.mu.Unlock()
}

// total is the number of requests the photo hosts received.
func (h *photoHost) total() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, v := range h.hits {
		n += v
	}
	return n
}

func (h *photoHost) reset() {
	h.mu.Lock()
	h.hits = map[string]int{}
	h.mu.Unlock()
}

// fetchEnv serves the API with photo URLs allowed from host only.
func fetchEnv(t *testing.T, host *photoHost, maxBytes int64) *env {
	u, _ := url.Parse(host.URL)
	return newEnv(t, Config{Fetch: FetchConfig{AllowHosts: []string{u.Host}, MaxBytes: maxBytes, Timeout: fetchTimeout}})
}

func TestPhotoURLs(t *testing.T) {
	host := newPhotoHost(t)
	u, _ := url.Parse(host.URL)
	e := fetchEnv(t, host, 4<<20)
	for _, tc := range []struct {
		url        string
		wantStatus int
		wantCode   string
	}{
		{host.URL + "/face.jpg", http.StatusOK, ""},
		{host.URL + "/big", http.StatusRequestEntityTooLarge, "too_large"},
		{host.URL + "/missing", http.StatusBadRequest, "fetch_failed"},
		{host.URL + "/slow", http.StatusBadRequest, "fetch_failed"},
		// Refused by CheckRedirect, not by a failed fetch: no request
		// reaches the other host (see TestPhotoURLRedirect).
		{host.URL + "/away", http.StatusBadRequest, "url_not_allowed"},
		{strings.Replace(host.URL, "127.0.0.1", "localhost", 1) + "/face.jpg", http.StatusBadRequest, "url_not_allowed"},
		{"http://169.254.169.254/latest/meta-data", http.StatusBadRequest, "url_not_allowed"},
		{"ftp://" + u.Host + "/face.jpg", http.StatusBadRequest, "bad_photo"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			t.Parallel() // /slow takes the whole fetch timeout
			status, hdr, body := e.do(t, "POST", "/v1/detect", e.Read, "application/json", jsonBody(t, map[string]string{"photo": tc.url}))
			if status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", status, tc.wantStatus, body)
			}
			if tc.wantCode != "" {
				if code := problemCode(t, hdr, body); code != tc.wantCode {
					t.Errorf("code %s, want %s (%s)", code, tc.wantCode, body)
				}
			} else if !strings.Contains(string(body), `"faces":[{`) {
				t.Errorf("no face in %s", body)
			}
		})
	}
}

// TestPhotoURLRedirect: a redirect to a host off the allow-list is refused
// before it is followed. Without CheckRedirect the second server is
// reached (and its photo is a face, so the request would succeed).
// Mutation checked: with CheckRedirect deleted from newFetcher this test
// fails (200, and the second server is hit once).
func TestPhotoURLRedirect(t *testing.T) {
	host := newPhotoHost(t)
	e := fetchEnv(t, host, 4<<20)
	status, hdr, body := e.do(t, "POST", "/v1/detect", e.Read, "application/json", jsonBody(t, map[string]string{"photo": host.URL + "/away"}))
	expectProblem(t, status, hdr, body, http.StatusBadRequest, "url_not_allowed")
	if !strings.Contains(string(body), "redirect") {
		t.Errorf("the problem does not say the redirect was refused: %s", body)
	}
	host.mu.Lock()
	defer host.mu.Unlock()
	if host.hits["/away"] != 1 || host.hits["elsewhere"] != 0 {
		t.Errorf("hits %v: want /away once and nothing elsewhere", host.hits)
	}
}

func TestPhotoURLsOffByDefault(t *testing.T) {
	host := newPhotoHost(t)
	e := newEnv(t, Config{})
	status, hdr, body := e.do(t, "POST", "/v1/detect", e.Read, "application/json", jsonBody(t, map[string]string{"photo": host.URL + "/face.jpg"}))
	if status != http.StatusBadRequest || problemCode(t, hdr, body) != "bad_photo" {
		t.Fatalf("fetch without allow-list: %d %s", status, body)
	}
	if n := host.total(); n != 0 {
		t.Errorf("%d fetches with fetching off", n)
	}
}

// TestPhotoURLFields: only a route's documented photo fields are fetched
// (issue 12, defect 3: every key starting with "photo" was), and the
// number of photos is checked before anything is fetched.
func TestPhotoURLFields(t *testing.T) {
	host := newPhotoHost(t)
	e := fetchEnv(t, host, 8<<20) // two photos of img1.jpg (2.3 MB) fit
	face := host.URL + "/face.jpg"
	urls := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = face
		}
		return out
	}
	for _, tc := range []struct {
		name, path string
		body       map[string]any
		wantStatus int
		wantCode   string
		wantHits   int
	}{
		// Other photo-like fields are unknown fields (issue 17): refused
		// before anything is fetched.
		{"detect reads photo only", "/v1/detect", map[string]any{"photo": face, "photo2": face, "photos": urls(3), "photo_backup": urls(4), "photograph": face}, http.StatusBadRequest, "unknown_field", 0},
		{"identify reads photo only", "/v1/identify", map[string]any{"photo": face, "photo1": face, "photos": urls(2)}, http.StatusBadRequest, "unknown_field", 0},
		{"verify reads photo1 and photo2", "/v1/verify", map[string]any{"photo1": face, "photo2": face, "photo": face, "photo3": urls(5)}, http.StatusBadRequest, "unknown_field", 0},
		{"enrol reads photo and photos", "/v1/persons", map[string]any{"id": "fields", "photos": urls(1), "photo_extra": urls(5), "photoz": face}, http.StatusBadRequest, "unknown_field", 0},
		{"detect fetches photo", "/v1/detect", map[string]any{"photo": face}, http.StatusOK, "", 1},
		{"verify fetches photo1 and photo2", "/v1/verify", map[string]any{"photo1": face, "photo2": face}, http.StatusOK, "", 2},
		{"enrol fetches photos", "/v1/persons", map[string]any{"id": "fields", "photos": urls(1)}, http.StatusCreated, "", 1},
		{"40 photos refused unfetched", "/v1/persons", map[string]any{"id": "forty", "photos": urls(40)}, http.StatusBadRequest, "invalid", 0},
		{"photo and photos refused unfetched", "/v1/persons", map[string]any{"id": "both", "photo": face, "photos": urls(2)}, http.StatusBadRequest, "bad_photo", 0},
		{"two photos to detect refused unfetched", "/v1/detect", map[string]any{"photo": urls(2)}, http.StatusBadRequest, "bad_photo", 0},
		{"two photo1 to verify refused unfetched", "/v1/verify", map[string]any{"photo1": urls(2), "photo2": face}, http.StatusBadRequest, "bad_photo", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host.reset()
			status, hdr, body := e.do(t, "POST", tc.path, e.Write, "application/json", jsonBody(t, tc.body))
			if status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", status, tc.wantStatus, body)
			}
			if tc.wantCode != "" {
				if code := problemCode(t, hdr, body); code != tc.wantCode {
					t.Errorf("code %s, want %s", code, tc.wantCode)
				}
			}
			if n := host.total(); n != tc.wantHits {
				t.Errorf("%d fetches, want %d", n, tc.wantHits)
			}
		})
	}
}

// TestPhotoURLBudget: the photos fetched for one request share one byte
// and one time budget (fetch.max_bytes, fetch.timeout), native and
// through Server.FetchPhoto (the dialects).
func TestPhotoURLBudget(t *testing.T) {
	host := newPhotoHost(t)
	e := fetchEnv(t, host, 8<<20)

	t.Run("bytes", func(t *testing.T) {
		t.Parallel()
		// Each is under fetch.max_bytes, together they are not.
		body := jsonBody(t, map[string]any{"id": "budget", "photos": []string{host.URL + "/3mb", host.URL + "/3mb", host.URL + "/3mb"}})
		status, hdr, b := e.do(t, "POST", "/v1/persons", e.Write, "application/json", body)
		expectProblem(t, status, hdr, b, http.StatusRequestEntityTooLarge, "too_large")
	})
	t.Run("time", func(t *testing.T) {
		t.Parallel()
		// Each comes in 6 s, within fetch.timeout (10 s); the second
		// cannot also fit in it.
		body := jsonBody(t, map[string]any{"id": "late", "photos": []string{host.URL + "/late", host.URL + "/late"}})
		status, hdr, b := e.do(t, "POST", "/v1/persons", e.Write, "application/json", body)
		expectProblem(t, status, hdr, b, http.StatusBadRequest, "fetch_failed")
	})
	t.Run("dialect", func(t *testing.T) {
		t.Parallel()
		u, _ := url.Parse(host.URL)
		s := New(Config{Service: e.Svc, Fetch: FetchConfig{AllowHosts: []string{u.Host}, MaxBytes: 5 << 20, Timeout: fetchTimeout}})
		// A dialect fetching two photos for one request, as FindFace's
		// verify does.
		s.Mount("/compat/two", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for range 2 {
				if _, err := s.FetchPhoto(r.Context(), host.URL+"/3mb"); err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
			}
			w.WriteHeader(http.StatusOK)
		}))
		resp, err := http.Get(serve(t, s.Handler()) + "/compat/two/x")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "exceed") {
			t.Errorf("two 3 MB photos for one dialect request: %d %s, want the byte budget refusing the second", resp.StatusCode, b)
		}
		// Each call outside a request has its own budget.
		for range 2 {
			if _, err := s.FetchPhoto(context.Background(), host.URL+"/3mb"); err != nil {
				t.Errorf("FetchPhoto outside a request: %v", err)
			}
		}
	})
}
