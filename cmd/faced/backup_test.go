package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/facedhq/faced/daemon"
	"github.com/facedhq/faced/store"
)

// seedStore creates a store with one person in dataDir.
func seedStore(t *testing.T, dataDir, person string) {
	t.Helper()
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(daemon.DBPath(dataDir), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, _, err := db.CreatePerson(context.Background(), store.Person{ID: person, Name: "Ada"}, nil); err != nil {
		t.Fatal(err)
	}
}

func personIn(t *testing.T, dataDir, person string) bool {
	t.Helper()
	db, err := store.Open(daemon.DBPath(dataDir), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = db.GetPerson(context.Background(), person)
	return err == nil
}

func TestBackupRestoreStopped(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	seedStore(t, src, "ada")
	file := filepath.Join(t.TempDir(), "snap.db")
	mustFaced(t, "backup", "--data-dir", src, file)
	mustFaced(t, "restore", "--data-dir", dst, file)
	if !personIn(t, dst, "ada") {
		t.Fatal("restored store lacks the person")
	}
	if _, _, err := faced(t, "backup", "--data-dir", src); err == nil {
		t.Error("backup without FILE accepted")
	}
	garbage := filepath.Join(t.TempDir(), "garbage.db")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("x"), 40000), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := faced(t, "restore", "--data-dir", dst, garbage); err == nil {
		t.Error("restore of garbage accepted")
	}
}

// TestBackupWhileServing: with the daemon holding the store, faced backup
// gets a consistent snapshot through the control socket, and restore into
// the live data directory is refused.
func TestBackupWhileServing(t *testing.T) {
	t.Run("short data dir", func(t *testing.T) { testBackupWhileServing(t, t.TempDir()) })
	// Issue 12 #10: a data directory whose socket path exceeds the 108
	// bytes of sun_path stopped start-up.
	t.Run("long data dir", func(t *testing.T) { testBackupWhileServing(t, longDir(t)) })
}

// longDir is a data directory whose control socket path is far beyond
// the Unix socket limit (108 bytes with the NUL).
func longDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), strings.Repeat("a-long-directory-name-", 4), strings.Repeat("and-another-one-", 4))
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	if n := len(daemon.ControlSocketPath(dir)); n <= 108 {
		t.Fatalf("socket path is %d bytes, want more than 108", n)
	}
	return dir
}

func testBackupWhileServing(t *testing.T, dir string) {
	seedStore(t, dir, "ada")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var serveErr error
	go func() {
		defer close(done)
		var out, errOut bytes.Buffer
		serveErr = run(ctx, []string{"serve", "--data-dir", dir, "--listen", "127.0.0.1:0"}, &out, &errOut)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		if serveErr != nil {
			t.Errorf("serve: %v", serveErr)
		}
	})
	sock := daemon.ControlSocketPath(dir)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		select {
		case <-done:
			t.Fatalf("serve exited before its control socket appeared: %v", serveErr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("daemon did not start")
		}
	}
	if _, err := store.Open(daemon.DBPath(dir), store.Options{Timeout: 100 * time.Millisecond}); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("store not held by the daemon: %v", err)
	}
	if st, err := os.Stat(sock); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("control socket mode: %v, %v", st.Mode(), err)
	}
	file := filepath.Join(t.TempDir(), "online.db")
	mustFaced(t, "backup", "--data-dir", dir, file)
	if err := store.Verify(file); err != nil {
		t.Fatal(err)
	}
	restored := t.TempDir()
	mustFaced(t, "restore", "--data-dir", restored, file)
	if !personIn(t, restored, "ada") {
		t.Fatal("online backup lacks the person")
	}
	// Refused with the reason and the fix, not a raw "database is
	// locked", with or without --force; nothing is kept or replaced.
	for _, args := range [][]string{{"restore", "--data-dir", dir, file}, {"restore", file, "--data-dir", dir, "--force"}} {
		_, _, err := faced(t, args...)
		if err == nil {
			t.Fatalf("faced %s: restore over a running daemon's store accepted", strings.Join(args, " "))
		}
		if !strings.Contains(err.Error(), "faced is running") || !strings.Contains(err.Error(), "systemctl stop faced") || strings.Contains(err.Error(), "database is locked") {
			t.Errorf("faced %s: err = %v, want the explanation that faced is running and how to stop it", strings.Join(args, " "), err)
		}
	}
	if _, err := os.Stat(daemon.DBPath(dir) + ".before-restore"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused restore left a kept store: %v", err)
	}
}
