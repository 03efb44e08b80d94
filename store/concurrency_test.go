package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

// TestConcurrentOperations runs writers and readers together; run it with
// -race. Reads may miss what is being deleted (ErrNotFound) but must never
// see anything else go wrong, and the store must be consistent afterwards.
func TestConcurrentOperations(t *testing.T) {
	db, _ := openTest(t, Options{OutboxMaxCount: 50})
	mustGalleries(t, db, "g", "h")

	var (
		mu  sync.Mutex
		ids []string
	)
	pick := func(r *rand.Rand) string {
		mu.Lock()
		defer mu.Unlock()
		if len(ids) == 0 {
			return "none"
		}
		return ids[r.IntN(len(ids))]
	}
	var wg sync.WaitGroup
	run := func(name string, n int, fn func(r *rand.Rand, i int) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(len(name)), 1))
			for i := range n {
				if err := fn(r, i); err != nil && !errors.Is(err, ErrNotFound) {
					t.Errorf("%s: %v", name, err)
					return
				}
			}
		}()
	}
	for w := range 3 {
		run(fmt.Sprint("create", w), 40, func(r *rand.Rand, i int) error {
			p, _, err := db.CreatePerson(ctx, Person{}, []NewFace{face(uint64(i), "g"), face(uint64(i+w), "g", "h")},
				OutboxMessage{Topic: "t"})
			if err == nil {
				mu.Lock()
				ids = append(ids, p.ID)
				mu.Unlock()
			}
			return err
		})
	}
	run("delete", 40, func(r *rand.Rand, _ int) error {
		_, err := db.DeletePerson(ctx, pick(r))
		return err
	})
	run("get", 200, func(r *rand.Rand, _ int) error {
		_, err := db.GetPerson(ctx, pick(r))
		return err
	})
	run("add faces", 40, func(r *rand.Rand, i int) error {
		_, err := db.AddFaces(ctx, pick(r), []NewFace{face(uint64(i), "h")})
		return err
	})
	run("list faces", 60, func(r *rand.Rand, _ int) error {
		o := ListOptions{Limit: 7, Gallery: []string{"", "g", "h"}[r.IntN(3)]}
		seen := map[uint64]bool{}
		for {
			page, err := db.ListFaces(ctx, o)
			if err != nil {
				return err
			}
			for _, f := range page.Items {
				if seen[f.ID] {
					return fmt.Errorf("face %d listed twice", f.ID)
				}
				seen[f.ID] = true
			}
			if o.Cursor = page.Next; o.Cursor == "" {
				return nil
			}
		}
	})
	run("events", 60, func(r *rand.Rand, _ int) error {
		_, err := db.AddEvent(ctx, Event{CameraID: "c", PersonID: pick(r)}, nil, queueOn("e"))
		return err
	})
	run("embeddings", 10, func(*rand.Rand, int) error {
		return db.ForEachEmbedding(ctx, func(f Face) error {
			if len(f.Embedding) != 512 {
				return fmt.Errorf("face %d has %d dims", f.ID, len(f.Embedding))
			}
			return nil
		})
	})
	run("outbox", 30, func(*rand.Rand, int) error {
		msgs, err := db.PeekOutbox(ctx, 5)
		if err != nil || len(msgs) == 0 {
			return err
		}
		return db.AckOutbox(ctx, msgs[0].Seq)
	})
	wg.Wait()
	mustCheck(t, db)
}
