package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/facedhq/faced/api"
	"github.com/facedhq/faced/daemon"
	"github.com/facedhq/faced/face"
	"github.com/facedhq/faced/models"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// httpLoad is one load level of `faced bench http`.
type httpLoad struct {
	Endpoint  string  `json:"endpoint"`
	Clients   int     `json:"clients"`
	Requests  int     `json:"requests"`
	Errors    int     `json:"errors"`
	ReqPerSec float64 `json:"req_per_s"`
	P50MS     float64 `json:"p50_ms"`
	P95MS     float64 `json:"p95_ms"`
	P99MS     float64 `json:"p99_ms"`
}

type httpReport struct {
	Persons int `json:"persons"`
	// PipelinePerSec is detect+embed+search called in-process with as many
	// workers as cores: the ceiling HTTP is compared with.
	PipelinePerSec float64    `json:"pipeline_per_s"`
	Loads          []httpLoad `json:"loads"`
}

// benchHTTP serves a gallery of --persons synthetic people on loopback and
// measures POST /v1/identify and POST /v1/persons at several client counts.
func benchHTTP(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench http", "", stderr)
	persons := fs.Int("persons", 10_000, "persons in the gallery")
	duration := fs.Duration("duration", 10*time.Second, "load per level")
	imagePath := fs.String("image", "../shared/data/deepface/img1.jpg", "one-face photo, re-framed to 640x480")
	depsDir := fs.String("deps-dir", "", "folder with lib/ and models/ (default: $FACED_DEPS_DIR, the installed package, or .deps)")
	asJSON := fs.Bool("json", false, "print one JSON object")
	if err := fs.parse(args); err != nil {
		return err
	}
	deps, err := findDeps(*depsDir)
	if err != nil {
		return fmt.Errorf("bench http: %w", err)
	}
	raw, err := os.ReadFile(*imagePath)
	if err != nil {
		return fmt.Errorf("bench http: %w (set --image to a one-face JPEG photo)", err)
	}
	photo, err := face.Reframe(raw, 640, 480)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "faced-bench-http-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	vcfg := daemon.DefaultVision()
	vcfg.Sessions, vcfg.DepsDir = runtime.NumCPU(), deps
	d, err := daemon.Open(ctx, daemon.Options{DataDir: dir, Vision: vcfg, MQTT: daemon.DefaultMQTT()}, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer d.Close()
	if err := seedGallery(ctx, d.Store, d.Vision.Pipeline, *persons); err != nil {
		return err
	}
	d.Close()
	// Reopen so the index is built from the store, as at start-up.
	if d, err = daemon.Open(ctx, daemon.Options{DataDir: dir, Vision: vcfg, MQTT: daemon.DefaultMQTT()}, slog.New(slog.DiscardHandler)); err != nil {
		return err
	}
	defer d.Close()
	key, err := service.CreateAPIKey(ctx, d.Store, "bench", []string{"write"}, time.Now())
	if err != nil {
		return err
	}

	rep := httpReport{Persons: *persons}
	if rep.PipelinePerSec, err = pipelineRate(ctx, d.Service, photo, *duration); err != nil {
		return err
	}

	srv := api.New(api.Config{Service: d.Service, MaxQueue: 64})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	// The server and connection cap serve uses, with default settings.
	apiCfg := daemon.DefaultConfig().API
	hs := httpServer(apiCfg, srv.Handler(), nil, slog.New(slog.DiscardHandler))
	go hs.Serve(daemon.NewConnLimit(apiCfg.MaxConnections).Listener(ln))
	defer hs.Close()
	base := "http://" + ln.Addr().String()

	enrollBody, enrollType := enrollRequest(photo)
	for _, ep := range []struct {
		name, path, contentType string
		body                    []byte
	}{
		{"identify", "/v1/identify", "image/jpeg", photo},
		{"enroll", "/v1/persons", enrollType, enrollBody},
	} {
		for _, clients := range []int{1, 4, 16} {
			l := runLoad(ctx, base+ep.path, key.Token, ep.contentType, ep.body, clients, *duration)
			l.Endpoint = ep.name
			rep.Loads = append(rep.Loads, l)
		}
	}

	if *asJSON {
		return json.NewEncoder(stdout).Encode(rep)
	}
	tw := tabwriter.NewWriter(stdout, 0, 2, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "gallery\t%d persons\t\t\t\t\t\n", rep.Persons)
	fmt.Fprintf(tw, "pipeline alone\t%.1f/s\t\t\t\t\t\n", rep.PipelinePerSec)
	fmt.Fprintln(tw, "endpoint\tclients\treq/s\tp50 ms\tp95 ms\tp99 ms\terrors\t")
	for _, l := range rep.Loads {
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t\n", l.Endpoint, l.Clients, l.ReqPerSec, l.P50MS, l.P95MS, l.P99MS, l.Errors)
	}
	return tw.Flush()
}

// seedGallery stores n persons with one synthetic face each, in batches:
// the identify cost depends on the gallery size, not on how it was made.
func seedGallery(ctx context.Context, db *store.DB, p *face.Pipeline, n int) error {
	r := rand.New(rand.NewPCG(1, 2))
	dim, embedder := p.EmbedderDim(), p.EmbedderID()
	for i := 0; i < n; {
		// One transaction per 100 persons keeps seeding fast.
		for j := 0; j < 100 && i < n; j, i = j+1, i+1 {
			v := make([]float32, dim)
			for k := range v {
				v[k] = float32(r.NormFloat64())
			}
			nf := store.NewFace{Face: store.Face{Galleries: []string{"default"}, Embedding: models.L2Normalize(v),
				EmbedderID: embedder, PhotoHash: fmt.Sprintf("%064x", i)}}
			if _, _, err := db.CreatePerson(ctx, store.Person{ID: fmt.Sprintf("seed-%06d", i)}, []store.NewFace{nf}); err != nil {
				return err
			}
		}
	}
	return nil
}

// pipelineRate runs identify in-process with one worker per core.
func pipelineRate(ctx context.Context, svc *service.Service, photo []byte, d time.Duration) (float64, error) {
	var n int
	var mu sync.Mutex
	var firstErr error
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	start := time.Now()
	for range runtime.NumCPU() {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				_, err := svc.Identify(ctx, service.IdentifyRequest{Photo: photo, Threshold: service.DefaultThreshold})
				mu.Lock()
				n++
				if err != nil && firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds(), firstErr
}

func enrollRequest(photo []byte) ([]byte, string) {
	// The same photo every time: allow_duplicate, or every enrolment but
	// the first is 409 duplicate_face. (So the default path's duplicate
	// search, one index search per photo, is not in the figure.)
	body, _ := json.Marshal(map[string]any{"photo": photo, "allow_duplicate": true}) // []byte marshals as base64
	return body, "application/json"
}

// runLoad keeps `clients` requests in flight for d and measures them.
func runLoad(ctx context.Context, url, key, contentType string, body []byte, clients int, d time.Duration) httpLoad {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	var mu sync.Mutex
	var lat []time.Duration
	errs := 0
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Content-Type", contentType)
				req.Header.Set("Authorization", "Bearer "+key)
				t0 := time.Now()
				resp, err := client.Do(req)
				ok := err == nil && resp.StatusCode < 300
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				mu.Lock()
				lat = append(lat, time.Since(t0))
				if !ok {
					errs++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(len(lat)-1, int(float64(len(lat))*p))].Microseconds()) / 1000
	}
	return httpLoad{Clients: clients, Requests: len(lat), Errors: errs, ReqPerSec: float64(len(lat)-errs) / elapsed.Seconds(),
		P50MS: pct(0.50), P95MS: pct(0.95), P99MS: pct(0.99)}
}
