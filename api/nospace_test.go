package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// TestFullDiskIsInsufficientStorage: when the store cannot write because
// the disk is full, the real server answers 507 insufficient_storage (the
// client may retry later; nothing was stored), not a generic 500; once
// space is freed, writes work again. The store lives on a real 4 MiB
// tmpfs, filled to the last byte, so the ENOSPC is the kernel's.
func TestFullDiskIsInsufficientStorage(t *testing.T) {
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("needs root to mount a small tmpfs (the full-disk path is also covered by TestProblemForNoSpace): %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })

	db, err := store.Open(filepath.Join(mnt, "faced.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc, err := service.New(context.Background(), db, vision.Pipeline, service.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	key, err := service.CreateAPIKey(context.Background(), db, "t", []string{"read", "write"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(New(Config{Service: svc, Logger: slog.New(slog.DiscardHandler)}).Handler())
	t.Cleanup(ts.Close)
	e := &env{URL: ts.URL, Svc: svc, DB: db, Write: key.Token, Read: key.Token}
	img := enc64(photo(t, "img1.jpg"))
	crudJSON(t, e, "POST", "/v1/persons", e.Write, map[string]any{"id": "before", "photo": img}, http.StatusCreated, "")

	// Fill the file system.
	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the tmpfs: %v", err)
			}
			break
		}
	}
	for n := 1; ; n++ { // bytes at a time, to the last one
		if _, err := f.Write(buf[:1]); err != nil {
			break
		}
		if n > 1<<20 {
			t.Fatal("tmpfs never filled")
		}
	}
	f.Close()

	// Enrolments (new pages) fail with 507 until space is freed. A few
	// tries: the first may still fit in pages bbolt had free.
	status := 0
	for i := range 20 {
		body := map[string]any{"id": fmt.Sprint("full-", i), "photo": img, "meta": map[string]any{"pad": strings.Repeat("x", 30000)}, "allow_duplicate": true}
		st, hdr, b := e.do(t, "POST", "/v1/persons", e.Write, "application/json", jsonBody(t, body))
		if st == http.StatusCreated {
			continue
		}
		status = st
		crudWant(t, "enrol on a full disk", st, hdr, b, http.StatusInsufficientStorage, "insufficient_storage")
		break
	}
	if status != http.StatusInsufficientStorage {
		t.Fatalf("20 enrolments fit on a full 4 MiB tmpfs?")
	}
	crudJSON(t, e, "GET", "/v1/persons/before", e.Read, nil, http.StatusOK, "")

	os.Remove(filler)
	crudJSON(t, e, "POST", "/v1/persons", e.Write, map[string]any{"id": "after", "photo": img, "allow_duplicate": true}, http.StatusCreated, "")
}

// TestProblemForNoSpace: ENOSPC and EDQUOT from the store's boundary
// (injected here: the wrapped errno the store returns) map to 507.
func TestProblemForNoSpace(t *testing.T) {
	for _, errno := range []error{syscall.ENOSPC, syscall.EDQUOT} {
		err := fmt.Errorf("service: enrol: %w", fmt.Errorf("store: create person: %w: %w", store.ErrNoSpace, &os.PathError{Op: "write", Path: "faced.db", Err: errno}))
		if p := problemFor(err); p.Status != http.StatusInsufficientStorage || p.Code != "insufficient_storage" {
			t.Errorf("%v: %d %s", errno, p.Status, p.Code)
		}
	}
}
