package facesearch_test

import (
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/facedhq/faced/api"
	"github.com/facedhq/faced/api/facesearch"
	"github.com/facedhq/faced/internal/apitest"
	"github.com/facedhq/faced/internal/apitest/dialecttest"
	"github.com/facedhq/faced/internal/testenv"
	"github.com/facedhq/faced/service"
)

// TestErrorAliases: a Laravel app posts JSON (Content-Type
// application/json, Basic auth) and reads errors as errorCode and
// error_message; with WithErrorAliases, as the daemon mounts the dialect,
// every error carries them, mirroring status_code and message (issue 19).
func TestErrorAliases(t *testing.T) {
	d := dialecttest.Serve(t, apitest.New(t, vision), nil, dialecttest.Mount{Prefix: "/compat/facesearch", New: func(svc *service.Service, q api.Queue, logger *slog.Logger) http.Handler {
		return facesearch.New(svc, q, logger, facesearch.WithErrorAliases())
	}})
	f, client := d.Fixture, d.Client
	post := func(path, token string, body any) (int, map[string]json.RawMessage) {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", d.Base+base+path, strings.NewReader(string(b)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		id, secret, _ := strings.Cut(token, ".")
		req.SetBasicAuth(id, secret)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]json.RawMessage
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, m
	}
	aliases := func(what string, m map[string]json.RawMessage, code int) {
		t.Helper()
		var ec, sc int
		var em, msg string
		json.Unmarshal(m["errorCode"], &ec)
		json.Unmarshal(m["status_code"], &sc)
		json.Unmarshal(m["error_message"], &em)
		json.Unmarshal(m["message"], &msg)
		if m["errorCode"] == nil || m["error_message"] == nil || ec != code || sc != code || em != facesearch.Messages[code] || msg != em {
			t.Fatalf("%s: %v, want errorCode/error_message = %d %q", what, m, code, facesearch.Messages[code])
		}
	}
	photo := base64.StdEncoding.EncodeToString(testenv.ReadPhoto(t, "deepface/img1.jpg"))
	grey := base64.StdEncoding.EncodeToString(testenv.ReadPhoto(t, "deepface/img1.jpg")[:200])

	status, m := post("/search", "nobody.nothing", map[string]any{"image": map[string]any{"base64": photo}})
	if status != http.StatusUnauthorized {
		t.Fatalf("bad key: %d", status)
	}
	aliases("bad key", m, facesearch.CodeAuth)
	status, m = post("/search", f.Read, map[string]any{"image": map[string]any{"base64": grey}})
	if status != http.StatusBadRequest {
		t.Fatalf("bad image: %d %v", status, m)
	}
	aliases("bad image", m, facesearch.CodeImageFormat)
	status, m = post("/images/none", f.Write, map[string]any{})
	if status != http.StatusBadRequest && status != http.StatusNotFound {
		t.Fatalf("bad id: %d %v", status, m)
	}
	aliases("bad id", m, facesearch.CodeFormatType)
	// Success: the document's envelope only.
	status, m = post("/search", f.Read, map[string]any{"image": map[string]any{"base64": photo}})
	if status != http.StatusOK || len(m) != 3 || m["errorCode"] != nil {
		t.Fatalf("search: %d %v", status, m)
	}
}
