package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// snapshot is everything a store holds, in comparable form.
type snapshot struct {
	Persons   []Person
	Faces     []Face
	Galleries []Gallery
	Events    []Event
	Keys      []APIKey
	Outbox    []OutboxMessage
	Stats     OutboxStats
}

func takeSnapshot(t *testing.T, db *DB) snapshot {
	t.Helper()
	var s snapshot
	all := func(o ListOptions, fn func(ListOptions) (string, error)) {
		for {
			next, err := fn(o)
			if err != nil {
				t.Fatal(err)
			}
			if next == "" {
				return
			}
			o.Cursor = next
		}
	}
	all(ListOptions{Limit: MaxLimit}, func(o ListOptions) (string, error) {
		p, err := db.ListPersons(ctx, o)
		s.Persons = append(s.Persons, p.Items...)
		return p.Next, err
	})
	if err := db.ForEachEmbedding(ctx, func(f Face) error { s.Faces = append(s.Faces, f); return nil }); err != nil {
		t.Fatal(err)
	}
	all(ListOptions{}, func(o ListOptions) (string, error) {
		p, err := db.ListGalleries(ctx, o)
		s.Galleries = append(s.Galleries, p.Items...)
		return p.Next, err
	})
	q := EventQuery{Limit: MaxLimit}
	for {
		p, err := db.ListEvents(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		s.Events = append(s.Events, p.Items...)
		if q.Cursor = p.Next; q.Cursor == "" {
			break
		}
	}
	s.Keys, _ = db.ListAPIKeys(ctx)
	s.Outbox, _ = db.PeekOutbox(ctx, MaxLimit)
	s.Stats, _ = db.OutboxStats(ctx)
	return s
}

func TestBackupWhileWritingThenRestore(t *testing.T) {
	db, _ := openTest(t, Options{})
	mustGalleries(t, db, "g")
	db.PutAPIKey(ctx, APIKey{ID: "k", Hash: []byte("h")})

	// One writer enrols persons named 0, 1, 2, ... in order while backups
	// run. A consistent snapshot must then hold exactly persons 0..n-1 for
	// some n, each with both faces and the matching event and message:
	// never a person without its faces or a gap.
	var wg sync.WaitGroup
	var enrolled atomic.Int64
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			nf := face(uint64(i), "g")
			nf.Image = bytes.Repeat([]byte{byte(i)}, 3000) // grow the file
			p, _, err := db.CreatePerson(ctx, Person{ID: fmt.Sprintf("p%05d", i)}, []NewFace{nf, face(uint64(i)+1, "g")},
				OutboxMessage{Topic: "enrol", Payload: []byte(fmt.Sprint(i))})
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := db.AddEvent(ctx, Event{CameraID: "c", PersonID: p.ID}, []byte("snap"), nil); err != nil {
				t.Error(err)
				return
			}
			enrolled.Add(1)
		}
	}()

	dir := t.TempDir()
	var backups []string
	for i := range 5 {
		for enrolled.Load() < int64(20*i) && !t.Failed() {
			time.Sleep(time.Millisecond)
		}
		path := filepath.Join(dir, fmt.Sprintf("backup-%d.db", i))
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		n, err := db.Backup(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if fi, _ := f.Stat(); fi.Size() != n {
			t.Errorf("Backup reported %d bytes, wrote %d", n, fi.Size())
		}
		f.Close()
		backups = append(backups, path)
	}
	close(stop)
	wg.Wait()

	for i, b := range backups {
		target := filepath.Join(dir, fmt.Sprintf("restored-%d.db", i))
		if err := Restore(b, target); err != nil {
			t.Fatal(err)
		}
		r, err := Open(target, Options{})
		if err != nil {
			t.Fatal(err)
		}
		mustCheck(t, r)
		s := takeSnapshot(t, r)
		for j, p := range s.Persons {
			if p.ID != fmt.Sprintf("p%05d", j) {
				t.Fatalf("backup %d: person %d is %s: not a prefix of the writes", i, j, p.ID)
			}
		}
		if len(s.Faces) != 2*len(s.Persons) || len(s.Outbox) != len(s.Persons) {
			t.Errorf("backup %d: %d persons, %d faces, %d messages", i, len(s.Persons), len(s.Faces), len(s.Outbox))
		}
		if len(s.Events) != len(s.Persons) && len(s.Events) != len(s.Persons)-1 {
			t.Errorf("backup %d: %d events for %d persons", i, len(s.Events), len(s.Persons))
		}
		t.Logf("backup %d: %d persons", i, len(s.Persons))
		r.Close()
	}

	// Quiet now: a backup restored elsewhere equals the source exactly.
	var buf bytes.Buffer
	if _, err := db.Backup(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "final.db")
	writeFile(t, src, buf.Bytes())
	target := filepath.Join(dir, "sub", "final-restored.db")
	if err := os.Mkdir(filepath.Dir(target), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, target, []byte("old contents to be replaced")) // a damaged target is replaced
	if err := Restore(src, target); err != nil {
		t.Fatal(err)
	}
	r, err := Open(target, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	want, got := takeSnapshot(t, db), takeSnapshot(t, r)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("restored store differs: %d/%d persons, %d/%d faces", len(got.Persons), len(want.Persons), len(got.Faces), len(want.Faces))
	}
	if n := len(want.Persons); n < 2 {
		t.Errorf("writer made only %d persons", n)
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(target), ".*restore*"))
	if len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

func TestRestoreRefuses(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	db, err := Open(good, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.CreatePerson(ctx, Person{ID: "good"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	garbage := filepath.Join(dir, "garbage.db")
	writeFile(t, garbage, bytes.Repeat([]byte("not a database "), 1000))
	empty := filepath.Join(dir, "empty.db")
	writeFile(t, empty, nil)
	newer := filepath.Join(dir, "newer.db")
	copyFile(t, good, newer)
	b, err := bbolt.Open(newer, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Update(func(tx *bbolt.Tx) error { return writeVersion(tx, CurrentSchemaVersion+1) }); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// Cut the file one page short of the pages its meta page claims.
	truncated := filepath.Join(dir, "truncated.db")
	b, err = bbolt.Open(good, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var used int64
	if err := b.View(func(tx *bbolt.Tx) error { used = tx.Size(); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, truncated, data[:used-4096])

	// The target is a live store with data that must survive every refusal.
	target := filepath.Join(dir, "live.db")
	live, err := Open(target, Options{})
	if err != nil {
		t.Fatal(err)
	}
	live.CreatePerson(ctx, Person{ID: "precious"}, nil)
	live.Close()

	tests := []struct {
		name, backup string
		want         error
	}{
		{"garbage", garbage, ErrSchema},
		{"empty", empty, nil},
		{"truncated", truncated, ErrCorrupt},
		{"newer schema", newer, ErrSchema},
		{"missing", filepath.Join(dir, "nope.db"), os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Restore(tt.backup, target)
			if err == nil {
				t.Fatal("Restore succeeded")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Restore = %v, want %v", err, tt.want)
			}
		})
	}

	t.Run("locked target", func(t *testing.T) {
		running, err := Open(target, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer running.Close()
		wantErr(t, "Restore", Restore(good, target), ErrLocked)
	})

	live, err = Open(target, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if _, err := live.GetPerson(ctx, "precious"); err != nil {
		t.Errorf("a refused restore damaged the target: %v", err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".*restore*")); len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeFile writes a fixture, failing the test if it cannot: a fixture
// that was never written would make the case test something else.
func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreWithKeep: without Replace an existing store is refused; with
// it the replaced store is kept at Keep, which is never overwritten; a
// refused or failed restore leaves no kept file and the store as it was.
func TestRestoreWithKeep(t *testing.T) {
	dir := t.TempDir()
	person := func(path, id string) {
		t.Helper()
		db, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, _, err := db.CreatePerson(ctx, Person{ID: id}, nil); err != nil {
			t.Fatal(err)
		}
	}
	has := func(path, id string) bool {
		t.Helper()
		db, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		_, err = db.GetPerson(ctx, id)
		return err == nil
	}
	backup, target := filepath.Join(dir, "backup.db"), filepath.Join(dir, "live.db")
	keep := target + ".before-restore"
	person(backup, "restored")

	// No store yet: nothing to replace or keep.
	if err := RestoreWith(backup, filepath.Join(dir, "fresh.db"), RestoreOptions{Keep: filepath.Join(dir, "fresh.db.kept")}); err != nil {
		t.Fatalf("restore into nothing: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "fresh.db.kept")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a restore into nothing kept something: %v", err)
	}

	person(target, "original")
	wantErr(t, "RestoreWith without Replace", RestoreWith(backup, target, RestoreOptions{Keep: keep}), ErrDuplicate)
	garbage := filepath.Join(dir, "garbage.db")
	writeFile(t, garbage, bytes.Repeat([]byte("not a database "), 1000))
	wantErr(t, "RestoreWith of garbage", RestoreWith(garbage, target, RestoreOptions{Replace: true, Keep: keep}), ErrSchema)
	t.Run("locked", func(t *testing.T) {
		running, err := Open(target, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer running.Close()
		wantErr(t, "RestoreWith", RestoreWith(backup, target, RestoreOptions{Replace: true, Keep: keep}), ErrLocked)
	})
	if _, err := os.Stat(keep); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused restore kept something: %v", err)
	}
	if !has(target, "original") || has(target, "restored") {
		t.Fatal("a refused restore changed the store")
	}

	if err := RestoreWith(backup, target, RestoreOptions{Replace: true, Keep: keep}); err != nil {
		t.Fatal(err)
	}
	if !has(target, "restored") || !has(keep, "original") {
		t.Fatal("after the restore: want the backup in place and the original kept")
	}
	// A second restore must not overwrite the only copy of the original.
	wantErr(t, "second RestoreWith", RestoreWith(backup, target, RestoreOptions{Replace: true, Keep: keep}), ErrDuplicate)
	if !has(keep, "original") {
		t.Fatal("the second restore changed the kept store")
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, ".*restore*")); len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}
