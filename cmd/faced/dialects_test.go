package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/facedhq/faced/auth"
	"github.com/facedhq/faced/internal/testenv"
)

// The admin key every test here provisions through the configuration file.
const (
	dialectKeyID     = "00dead00beef"
	dialectKeySecret = "dialect-test-secret-dialect-test-secret-0123"
	dialectToken     = dialectKeyID + "." + dialectKeySecret
)

// serveDialects runs `faced serve` with an admin key and the extra YAML
// (e.g. a dialects section) and returns its main address and log.
func serveDialects(t *testing.T, extra string) (string, *testenv.Buffer) {
	t.Helper()
	dir := t.TempDir()
	config := filepath.Join(dir, "faced.yaml")
	err := os.WriteFile(config, fmt.Appendf(nil, `
data_dir: %s
listen: 127.0.0.1:0
keys:
  - id: %s
    name: dialect tests
    secret_sha256: %s
    scopes: [admin]
%s`, filepath.Join(dir, "data"), dialectKeyID, hex.EncodeToString(auth.HashSecret(dialectKeySecret)), extra), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	return startServe(t, "--config", config, "--attributes=false")
}

type answer struct {
	status int
	body   []byte
}

// call sends one request with the dialect's own key header.
func call(t *testing.T, method, url, authKind string, ctype string, body []byte) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	switch authKind {
	case "bearer":
		req.Header.Set("Authorization", "Bearer "+dialectToken)
	case "token":
		req.Header.Set("Authorization", "Token "+dialectToken)
	case "x-api-key":
		req.Header.Set("x-api-key", dialectToken)
	case "basic":
		id, secret, _ := strings.Cut(dialectToken, ".")
		req.SetBasicAuth(id, secret)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, b}
}

// enrolled is what the routing test creates first, so that every known
// route has a real resource to answer about and a handler reached by
// mistake answers 200 (or 400), never the 404 of an unknown path.
type enrolled struct {
	faceID, personID, externalID string
}

func enrolOne(t *testing.T, base string, photo []byte) enrolled {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"photo": base64.StdEncoding.EncodeToString(photo), "external_id": "4242", "name": "Sam Berry", "meta": map[string]any{"meta": "Sam Berry"}})
	a := call(t, "POST", base+"/v1/persons", "bearer", "application/json", body)
	if a.status != http.StatusCreated && a.status != http.StatusOK {
		t.Fatalf("enrol: %d %s", a.status, a.body)
	}
	var p struct {
		Person struct {
			ID string `json:"id"`
		} `json:"person"`
		Faces []struct {
			ID json.Number `json:"id"`
		} `json:"faces"`
	}
	if err := json.Unmarshal(a.body, &p); err != nil || p.Person.ID == "" || len(p.Faces) != 1 {
		t.Fatalf("enrol: %s (%v)", a.body, err)
	}
	return enrolled{faceID: p.Faces[0].ID.String(), personID: p.Person.ID, externalID: "4242"}
}

// findfacePaths are the FindFace dialect's routes, with real ids, below
// its base URL.
func findfacePaths(e enrolled) []string {
	var out []string
	for _, v := range []string{"/v0", "/v1", ""} {
		out = append(out, v+"/detect", v+"/verify", v+"/identify", v+"/face", v+"/face/id/"+e.faceID,
			v+"/face/meta/Sam%20Berry", v+"/faces", v+"/faces/gallery/default", v+"/faces/gallery/default/meta/Sam%20Berry",
			v+"/faces/gallery/default/identify", v+"/meta", v+"/meta/gallery/default", v+"/galleries", v+"/galleries/default",
			v+"/person/id/"+e.externalID, v+"/person/history/id/"+e.externalID, v+"/history/search", v+"/docs", v+"/docs/v0")
	}
	return out
}

// findfaceUnknown are the paths issue 19 found answered by another route.
var findfaceUnknown = []string{
	"/v0/face/gallery/default/identify", "/v0/face/gallery/default/identify/", "/v0/faces/id/1", "/v0/faces/id/1/",
	"/v0/galleries/x/y", "/v0/galleries/x/y/", "/v0/face/meta/a/b", "/v0/nothing/",
}

// TestUnknownSubPathsAreNotFound: below every mount (the native API and
// each dialect), a path under a known route that is not itself a route is
// 404 for every method, through a real `faced serve`, and reaches no
// handler: nothing is enrolled, whatever the body carries.
func TestUnknownSubPathsAreNotFound(t *testing.T) {
	addr, _ := serveDialects(t, "")
	base := "http://" + addr
	photo := testenv.ReadPhoto(t, "deepface/img12.jpg") // small: sent with every request
	e := enrolOne(t, base, photo)
	b64 := base64.StdEncoding.EncodeToString(photo)
	// A body every dialect would act on, were a handler reached.
	body, _ := json.Marshal(map[string]any{
		"photo": b64, "photo1": b64, "photo2": b64, "img": b64, "img0": b64, "image": map[string]any{"base64": b64},
		"name": "x", "meta": "x", "customer_person_id": "x", "collection_id": "default", "id": e.personID,
		"enrollment_id": e.personID, "ids": []string{e.faceID},
	})

	mounts := []struct {
		name, prefix, auth string
		paths              []string
		unknown            []string
	}{
		{"native", "", "bearer", []string{
			"/healthz", "/readyz", "/metrics", "/v1/device", "/v1/detect", "/v1/verify", "/v1/identify", "/v1/liveness", "/v1/openapi.json",
			"/v1/persons", "/v1/persons/" + e.personID, "/v1/persons/" + e.personID + "/faces", "/v1/persons/" + e.personID + "/faces/" + e.faceID,
			"/v1/faces", "/v1/faces/" + e.faceID, "/v1/galleries", "/v1/galleries/default", "/v1/events",
		}, nil},
		{"users", "/compat/users", "x-api-key", []string{"/users/search", "/users/" + e.externalID}, nil},
		{"facesearch", "/compat/facesearch", "basic", []string{"/api/v2/face_search/images", "/api/v2/face_search/images/" + e.faceID, "/api/v2/face_search/search"}, nil},
		{"miicloud", "/compat/miicloud", "token", []string{"/miicloud/person", "/miicloud/person/" + e.externalID, "/miicloud/match_faces"}, nil},
		{"trueface", "/compat/trueface", "x-api-key", []string{"/v1/spdetect", "/v1/facedetect", "/v1/enroll", "/v1/collection", "/v1/train", "/v1/match", "/v1/identify"}, nil},
		{"findface", "/compat/findface", "token", findfacePaths(e), findfaceUnknown},
	}
	for _, m := range mounts {
		t.Run(m.name, func(t *testing.T) {
			// Two or more segments below a route: no route of any mount
			// has those (one below may be a route: /galleries/{name}).
			var subs []string
			for _, p := range m.paths {
				subs = append(subs, p+"/x/y", p+"/x/y/z/", p+"/"+e.faceID+"/identify/")
			}
			subs = append(subs, m.unknown...)
			for _, p := range subs {
				for _, method := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
					if a := call(t, method, base+m.prefix+p, m.auth, "application/json", body); a.status != http.StatusNotFound {
						t.Errorf("%s %s%s: %d, want 404: %.200s", method, m.prefix, p, a.status, a.body)
					}
				}
			}
		})
	}
	// Nothing was enrolled by any of those requests.
	a := call(t, "GET", base+"/v1/faces", "bearer", "", nil)
	var faces struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(a.body, &faces); err != nil || len(faces.Items) != 1 {
		t.Fatalf("faces after the unknown paths: %s", a.body)
	}
}

var dialectAddr = regexp.MustCompile(`msg="serving dialect" dialect=(\w+) addr=(\S+)`)

// TestDialectRootListener: dialects.<name>.listen serves that dialect at
// the root of its own port, so clients with hard-coded absolute paths (a
// Go FindFace client's "/faces", the Trueface Android SDK's "/v1/...")
// only change host; the main listener keeps /compat/<name>, and the root
// listener serves nothing else.
func TestDialectRootListener(t *testing.T) {
	addr, log := serveDialects(t, "dialects:\n  findface: {listen: \"127.0.0.1:0\"}\n  trueface: {listen: \"127.0.0.1:0\"}\n")
	roots := map[string]string{}
	for _, m := range dialectAddr.FindAllStringSubmatch(log.String(), -1) {
		roots[m[1]] = "http://" + m[2]
	}
	if len(roots) != 2 || roots["findface"] == "" || roots["trueface"] == "" {
		t.Fatalf("dialect listeners %v; log:\n%s", roots, log)
	}
	ff, tf := roots["findface"], roots["trueface"]
	img1, img2 := testenv.ReadPhoto(t, "deepface/img1.jpg"), testenv.ReadPhoto(t, "deepface/img2.jpg")
	jsonBody := func(v any) []byte { b, _ := json.Marshal(v); return b }
	b64 := base64.StdEncoding.EncodeToString

	// FindFace at the root: the Go client's absolute "/face" and "/faces",
	// and the document's /v0 paths.
	a := call(t, "POST", ff+"/face", "token", "application/json", jsonBody(map[string]any{"photo": b64(img1), "meta": "Sam"}))
	var enrolled struct {
		Results []struct {
			ID int `json:"id"`
		} `json:"results"`
	}
	if err := json.Unmarshal(a.body, &enrolled); a.status != 200 || err != nil || len(enrolled.Results) != 1 {
		t.Fatalf("POST /face at the root: %d %s", a.status, a.body)
	}
	for _, p := range []string{"/faces", "/v0/faces/", "/v1/faces"} {
		if a = call(t, "GET", ff+p, "token", "", nil); a.status != 200 || !strings.Contains(string(a.body), fmt.Sprintf(`"id":%d`, enrolled.Results[0].ID)) {
			t.Fatalf("GET %s at the root: %d %s", p, a.status, a.body)
		}
	}
	if a = call(t, "POST", ff+"/v0/identify/", "token", "application/json", jsonBody(map[string]any{"photo": b64(img2)})); a.status != 200 || !strings.Contains(string(a.body), `"meta":"Sam"`) {
		t.Fatalf("identify at the root: %d %s", a.status, a.body)
	}
	// Only the dialect: not the native API, not the other mounts.
	for _, p := range []string{"/v1/device", "/healthz", "/compat/findface/v0/faces/", "/compat/trueface/v1/collection"} {
		if a = call(t, "GET", ff+p, "bearer", "", nil); a.status != 404 || !strings.Contains(string(a.body), `"error_code":"NOT_FOUND"`) {
			t.Fatalf("GET %s on the findface listener: %d %s, want FindFace's 404", p, a.status, a.body)
		}
	}

	// Trueface at the root: the Android SDK's @POST("/v1/facedetect").
	a = call(t, "POST", tf+"/v1/facedetect", "x-api-key", "application/json", jsonBody(map[string]any{"img": b64(img1)}))
	if a.status != 200 || !strings.Contains(string(a.body), `"success":true`) || !strings.Contains(string(a.body), "bounding_box") {
		t.Fatalf("trueface facedetect at the root: %d %s", a.status, a.body)
	}
	// The main listener still serves both below /compat, and counts the
	// root listeners' requests in its metrics.
	if a = call(t, "GET", "http://"+addr+"/compat/findface/v0/faces/", "token", "", nil); a.status != 200 {
		t.Fatalf("mount: %d %s", a.status, a.body)
	}
	if a = call(t, "GET", "http://"+addr+"/metrics", "", "", nil); !strings.Contains(string(a.body), `route="findface:/"`) || !strings.Contains(string(a.body), `route="trueface:/"`) {
		t.Fatalf("metrics lack the dialect listeners:\n%s", a.body)
	}
}
