package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

var ctx = context.Background()

// openTest opens a fresh store in t.TempDir() and closes it at cleanup.
func openTest(t testing.TB, opts Options) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "faced.db")
	db, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

// clock is a settable Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// vec is a deterministic pseudo-random unit-ish vector.
func vec(dim int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	v := make([]float32, dim)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

func photoHash(seed string) string {
	h := sha256.Sum256([]byte(seed))
	return hex.EncodeToString(h[:])
}

// face builds a valid new face in the given galleries.
func face(seed uint64, galleries ...string) NewFace {
	return NewFace{Face: Face{
		Galleries:  galleries,
		Box:        [4]float32{10, 20, 110, 140},
		PhotoHash:  photoHash("photo" + string(rune('a'+seed%26))),
		Embedding:  vec(512, seed),
		EmbedderID: "arcface-r512",
		Quality:    0.9,
		CameraID:   "cam-1",
	}}
}

func mustGalleries(t testing.TB, db *DB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := db.CreateGallery(ctx, Gallery{Name: n}); err != nil {
			t.Fatalf("CreateGallery(%q): %v", n, err)
		}
	}
}

func mustCheck(t testing.TB, db *DB) {
	t.Helper()
	if err := db.Check(ctx); err != nil {
		t.Fatalf("Check: %v", err)
	}
}

// wantErr fails unless err wraps target (nil target: no error expected).
func wantErr(t testing.TB, what string, err, target error) {
	t.Helper()
	switch {
	case target == nil && err != nil:
		t.Fatalf("%s: unexpected error %v", what, err)
	case target != nil && !errors.Is(err, target):
		t.Fatalf("%s: error %v, want %v", what, err, target)
	}
}
