package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/facedhq/faced/internal/testenv"
	"github.com/facedhq/faced/models"
)

// Bring your own model, end to end through `faced serve --config`: the
// catalogue's own ArcFace file declared under another name is a custom
// embedder; faces enrolled with arcface-r512 are reported as needing
// re-enrolment once the daemon runs the custom one (another embedder id),
// and with keep_images their kept crops are re-embedded so identify finds
// them again; a wrong sha256 refuses to load, naming both digests.
func TestServeCustomEmbedder(t *testing.T) {
	deps := testenv.DepsDir(t)
	m, err := models.LoadManifest()
	if err != nil {
		t.Fatal(err)
	}
	arc, err := m.Model("arcface-r512")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	const keyID, secret = "0123456789ab", "Zk3v9QwPq0wU4jx2pIY1n0m9V1sZl8H3yX5cR4k7Qw1"
	sum := sha256.Sum256([]byte(secret))
	token := keyID + "." + secret
	config := func(name, embedder, sha string, keep bool) string {
		path := filepath.Join(dir, name+".yaml")
		err := os.WriteFile(path, fmt.Appendf(nil, `
data_dir: %s
listen: 127.0.0.1:0
vision:
  embedder: %s
  liveness: ""
  attributes: false
  custom_models:
    - name: byo-arcface
      task: embed
      format: onnx
      file: %s
      sha256: %s
      license: "MIT (the catalogue's arcface-r512 file, declared by hand)"
      input: {name: input, shape: [1, 3, 112, 112], layout: NCHW, color: RGB, mean: 127, scale: 0.0078125}
      dim: 512
      calibration: {low: 0.3399, medium: 0.4066, strict: 0.4646}
service:
  keep_images: %v
keys:
  - {id: %s, name: test, secret_sha256: %s, scopes: [read, write]}
`, data, embedder, filepath.Join(deps, arc.File), sha, keep, keyID, hex.EncodeToString(sum[:])), 0o600)
		if err != nil {
			t.Fatal(err)
		}
		return path
	}

	// A wrong digest: serve refuses, naming the file's and the declared.
	wrong := strings.Repeat("0", 64)
	err = run(t.Context(), []string{"serve", "--config", config("wrong", "byo-arcface", wrong, false)}, io.Discard, &testenv.Buffer{})
	if err == nil || !errors.Is(err, models.ErrChecksum) || !strings.Contains(err.Error(), arc.SHA256) || !strings.Contains(err.Error(), wrong) ||
		!strings.Contains(err.Error(), "byo-arcface") {
		t.Fatalf("serve with a wrong sha256: %v", err)
	}

	// Faces enrolled with the catalogue's embedder: one without a kept
	// crop, one with.
	srv := serveStoppable(t, "--config", config("arc", "arcface-r512", arc.SHA256, false))
	enrolHTTP(t, srv.addr, token, "angelina", "img1.jpg")
	srv.stop()
	srv = serveStoppable(t, "--config", config("arc-keep", "arcface-r512", arc.SHA256, true))
	enrolHTTP(t, srv.addr, token, "p13", "img13.jpg")
	if got := identifyHTTP(t, srv.addr, token, "img14.jpg"); got != "p13" {
		t.Fatalf("arcface-r512: identify img14 = %q, want p13", got)
	}
	srv.stop()

	// The custom embedder, keep_images off: both persons are reported,
	// neither is found, and the log gives counts, not ids.
	srv = serveStoppable(t, "--config", config("byo", "byo-arcface", arc.SHA256, false))
	st := reembedHTTP(t, srv.addr, token)
	if want := "byo-arcface@" + arc.SHA256[:12]; st.Embedder != want {
		t.Errorf("embedder %q, want %q", st.Embedder, want)
	}
	if st.Faces != 2 || st.Stale != 2 || st.Current != 0 || st.Reembeddable != 1 || len(st.Persons) != 2 ||
		st.Persons[0].ID != "angelina" || st.Persons[0].Reembeddable != 0 ||
		st.Persons[1].ID != "p13" || st.Persons[1].Reembeddable != 1 ||
		len(st.Persons[0].Embedders) != 1 || st.Persons[0].Embedders[0] != models.EmbedderID(arc) {
		t.Errorf("re-embed status after the switch: %+v", st)
	}
	if got := identifyHTTP(t, srv.addr, token, "img14.jpg"); got != "" {
		t.Errorf("identify across embedders matched %q", got)
	}
	log := srv.log.String()
	if !strings.Contains(log, "need re-enrolment") || !strings.Contains(log, "persons=2") {
		t.Errorf("start-up log lacks the re-enrolment counts:\n%s", log)
	}
	if strings.Contains(log, "angelina") || strings.Contains(log, "p13") {
		t.Errorf("log names a person:\n%s", log)
	}
	srv.stop()

	// keep_images on: the kept crop is re-embedded in the background and
	// found again; the person without a crop still needs re-enrolment.
	srv = serveStoppable(t, "--config", config("byo-keep", "byo-arcface", arc.SHA256, true))
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		st = reembedHTTP(t, srv.addr, token)
		if !st.Running && st.Stale == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("kept crop not re-embedded: %+v", st)
		}
	}
	if len(st.Persons) != 1 || st.Persons[0].ID != "angelina" || st.Current != 1 {
		t.Errorf("after re-embedding: %+v", st)
	}
	if got := identifyHTTP(t, srv.addr, token, "img14.jpg"); got != "p13" {
		t.Errorf("identify img14 after re-embedding = %q, want p13", got)
	}
	// And the custom embedder enrols and identifies like any other.
	enrolHTTP(t, srv.addr, token, "p8", "img8.jpg")
	if got := identifyHTTP(t, srv.addr, token, "img9.jpg"); got != "p8" {
		t.Errorf("identify img9 with the custom embedder = %q, want p8", got)
	}
	// Its licence is on record.
	var dev struct {
		Models []struct {
			Name, License string
			Custom        bool
		} `json:"models"`
	}
	getJSON(t, srv.addr, token, "/v1/device", &dev)
	found := false
	for _, md := range dev.Models {
		if md.Name == "byo-arcface" {
			found = md.Custom && strings.HasPrefix(md.License, "MIT (the catalogue's")
		}
	}
	if !found {
		t.Errorf("/v1/device does not list byo-arcface with its licence: %+v", dev.Models)
	}
}

type stoppable struct {
	addr string
	log  *testenv.Buffer
	stop func()
}

// serveStoppable is startServe for tests that restart the daemon on the
// same data directory: stop ends it (and runs at cleanup if not called).
func serveStoppable(t *testing.T, args ...string) stoppable {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log := &testenv.Buffer{}
	go func() { done <- run(ctx, append([]string{"serve"}, args...), io.Discard, log) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m := servingAddr.FindStringSubmatch(log.String()); m != nil {
			return stoppable{addr: m[1], log: log, stop: stop}
		}
		select {
		case err := <-done:
			done <- err
			t.Fatalf("serve ended before serving: %v\nlog:\n%s", err, log)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start\nlog:\n%s", log)
		}
	}
}

func apiDo(t *testing.T, method, url, token string, body any) []byte {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, b)
	}
	return b
}

func getJSON(t *testing.T, addr, token, path string, v any) {
	t.Helper()
	if err := json.Unmarshal(apiDo(t, "GET", "http://"+addr+path, token, nil), v); err != nil {
		t.Fatal(err)
	}
}

func deepface(t *testing.T, name string) string {
	return base64.StdEncoding.EncodeToString(testenv.ReadPhoto(t, "deepface/"+name))
}

func enrolHTTP(t *testing.T, addr, token, id, photo string) {
	t.Helper()
	apiDo(t, "POST", "http://"+addr+"/v1/persons", token, map[string]any{"id": id, "photos": []string{deepface(t, photo)}})
}

// identifyHTTP returns the best match's person id, "" for none.
func identifyHTTP(t *testing.T, addr, token, photo string) string {
	t.Helper()
	var res struct {
		Faces []struct {
			Matches []struct {
				Person struct {
					ID string `json:"id"`
				} `json:"person"`
			} `json:"matches"`
		} `json:"faces"`
	}
	b := apiDo(t, "POST", "http://"+addr+"/v1/identify", token, map[string]any{"photo": deepface(t, photo)})
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Faces) == 0 || len(res.Faces[0].Matches) == 0 {
		return ""
	}
	return res.Faces[0].Matches[0].Person.ID
}

type reembedStatus struct {
	Embedder     string `json:"embedder"`
	Faces        int    `json:"faces"`
	Current      int    `json:"current"`
	Stale        int    `json:"stale"`
	Reembeddable int    `json:"reembeddable"`
	Running      bool   `json:"running"`
	Persons      []struct {
		ID           string   `json:"id"`
		Faces        int      `json:"faces"`
		Reembeddable int      `json:"reembeddable"`
		Current      int      `json:"current"`
		Embedders    []string `json:"embedders"`
	} `json:"persons"`
}

func reembedHTTP(t *testing.T, addr, token string) reembedStatus {
	t.Helper()
	var st reembedStatus
	getJSON(t, addr, token, "/v1/reembed", &st)
	return st
}

// --custom-models lets eval reach a declared model: the catalogue's ArcFace
// file under another name verifies exactly as arcface-r512 does, under its
// own embedder id (how an integrator measures a calibration).
func TestEvalVerifyCustomModels(t *testing.T) {
	deps, data := testenv.DepsDir(t), testenv.DataDir(t)
	m, err := models.LoadManifest()
	if err != nil {
		t.Fatal(err)
	}
	arc, err := m.Model("arcface-r512")
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "models.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, `
vision:
  custom_models:
    - {name: byo-arcface, task: embed, format: onnx, file: %s, sha256: %s, license: MIT, dim: 512,
       input: {name: input, shape: [1, 3, 112, 112], layout: NCHW, color: RGB, mean: 127, scale: 0.0078125}}
`, filepath.Join(deps, arc.File), arc.SHA256), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"eval", "verify", "--json", "--pairs", filepath.Join(data, "deepface", "master.csv"), "--images", filepath.Join(data, "deepface")}
	var catalogue, custom verifyJSON
	decodeJSON(t, mustFaced(t, append(args, "--embedder", "arcface-r512")...), &catalogue, verifyKeys...)
	decodeJSON(t, mustFaced(t, append(args, "--custom-models", cfg, "--embedder", "byo-arcface")...), &custom, verifyKeys...)
	if custom.Embedder != "byo-arcface@"+arc.SHA256[:12] {
		t.Errorf("embedder %q", custom.Embedder)
	}
	if custom.Accuracy != catalogue.Accuracy || custom.AUC != catalogue.AUC || custom.Threshold != catalogue.Threshold {
		t.Errorf("same file, different results: custom %+v, catalogue %+v", custom, catalogue)
	}
	// byo-arcface declares no calibration: no confidence may be printed,
	// and the text says why.
	if custom.ThresholdConfidence != nil || len(custom.APIPresets) != 0 {
		t.Errorf("an uncalibrated embedder got confidences: %v, %v", custom.ThresholdConfidence, custom.APIPresets)
	}
	text := mustFaced(t, "eval", "verify", "--pairs", filepath.Join(data, "deepface", "master.csv"), "--images", filepath.Join(data, "deepface"),
		"--custom-models", cfg, "--embedder", "byo-arcface")
	if !strings.Contains(text, "embedder byo-arcface@"+arc.SHA256[:12]+" has no calibration") || strings.Contains(text, "confidence 0") {
		t.Errorf("text for an uncalibrated embedder does not say it has no calibration, or prints a confidence:\n%s", text)
	}
	if _, _, err := faced(t, append(args, "--custom-models", filepath.Join(t.TempDir(), "none.yaml"))...); err == nil {
		t.Error("a missing --custom-models file was accepted")
	}
}
