package sync_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/facedhq/faced/internal/mqtttest"
	fleetsync "github.com/facedhq/faced/sync"
)

// BenchmarkGalleryUpserts1000 measures one backend burst of 1 000
// upsert_person operations with 512-d embeddings, from the first publish
// to the device's ack of the last (target: ≤ 2 s). The payloads are
// encoded before the clock starts: the backend's cost is not the device's.
//
//	go test -run '^$' -bench GalleryUpserts -benchtime 3x ./sync/
func BenchmarkGalleryUpserts1000(b *testing.B) {
	broker := mqtttest.Start(b, mqtttest.Options{})
	d := newDevice(b, fleetsync.Config{URL: broker.URL()}, "")
	backend := mqtttest.NewBackend(b, broker.URL(), "backend-bench", "faced/+/acks")
	waitConnected(b, d)
	rng := rand.New(rand.NewPCG(1, 2))
	dim := d.svc.Pipeline().EmbedderDim()
	const n = 1000
	var rev uint64
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		payloads := make([][]byte, n)
		for j := range n {
			vec := make([]float32, dim)
			for k := range vec {
				vec[k] = float32(rng.NormFloat64())
			}
			rev++
			op := upsert(rev, fmt.Sprintf("p-%d-%d", i, j), fleetsync.FaceSpec{Embedding: vec, Embedder: d.svc.EmbedderID()})
			payloads[j] = mustJSON(b, op)
		}
		last := fmt.Sprintf("op-%d", rev)
		b.StartTimer()
		start := time.Now()
		for _, p := range payloads {
			backend.Publish(topic(d, "gallery"), p, false)
		}
		acksUntil(b, backend, last)
		b.ReportMetric(time.Since(start).Seconds(), "s/1000ops")
	}
	b.StopTimer()
	if got := d.svc.GallerySize("staff"); got != n*b.N {
		b.Fatalf("staff holds %d faces, want %d", got, n*b.N)
	}
}
