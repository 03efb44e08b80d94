package service_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/facedhq/faced/internal/testenv"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// Environment of the child process of TestKillDuringEnrollLosesNothing.
const (
	crashDBEnv    = "FACED_CRASH_CHILD_DB"
	crashPhotoEnv = "FACED_CRASH_CHILD_PHOTO"
)

// runCrashChild enrols persons until killed, printing "ACK <id>" after each
// Enroll returns: an acknowledgement the parent may rely on.
func runCrashChild(dbPath, photoPath string) error {
	photo, err := os.ReadFile(photoPath)
	if err != nil {
		return err
	}
	db, err := store.Open(dbPath, store.Options{})
	if err != nil {
		return err
	}
	svc, err := service.New(context.Background(), db, vision.Pipeline, service.Config{}, nil)
	if err != nil {
		return err
	}
	for i := 0; ; i++ {
		id := fmt.Sprintf("crash-%04d", i)
		if _, _, err := svc.Enroll(context.Background(), service.EnrollRequest{Person: store.Person{ID: id}, Photos: [][]byte{photo}}); err != nil {
			return err
		}
		fmt.Printf("ACK %s\n", id)
	}
}

// TestKillDuringEnrollLosesNothing kills a process that is enrolling as fast
// as it can with SIGKILL, then reopens its store: every acknowledged enrol is
// there and searchable, and no face is left without its person.
func TestKillDuringEnrollLosesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "faced.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashDBEnv+"="+path, crashPhotoEnv+"="+filepath.Join(testenv.DataDir(t), "deepface", "img1.jpg"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []string
	sc := bufio.NewScanner(out)
	for sc.Scan() && len(acked) < 25 {
		if id, ok := strings.CutPrefix(sc.Text(), "ACK "); ok {
			acked = append(acked, id)
		}
	}
	cmd.Process.Kill() // SIGKILL: no deferred cleanup, no final sync
	cmd.Wait()
	if len(acked) < 25 {
		t.Fatalf("child acknowledged only %d enrols before dying", len(acked))
	}

	f := newFixture(t, path)
	ctx := context.Background()
	for _, id := range acked {
		if _, err := f.svc.GetPerson(ctx, id); err != nil {
			t.Errorf("acknowledged %s lost: %v", id, err)
		}
	}
	faces, err := f.svc.ListFaces(ctx, store.ListOptions{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, lf := range faces.Items {
		fc, err := f.svc.GetFace(ctx, lf.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.GetPerson(ctx, fc.PersonID); err != nil || len(fc.Embedding) == 0 {
			t.Errorf("face %d half-written: person %q (%v), %d-d embedding", fc.ID, fc.PersonID, err, len(fc.Embedding))
		}
	}
	if f.svc.IndexSize() != len(faces.Items) {
		t.Errorf("index has %d faces, store %d", f.svc.IndexSize(), len(faces.Items))
	}
	res, err := f.svc.Identify(ctx, service.IdentifyRequest{Photo: photo(t, "img2.jpg"), N: 100, Threshold: service.DefaultThreshold})
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, m := range res[0].Matches {
		found[m.Person.ID] = true
	}
	for _, id := range acked {
		if !found[id] {
			t.Errorf("acknowledged %s not searchable after restart", id)
		}
	}
	t.Logf("%d acknowledged, %d faces stored after SIGKILL", len(acked), len(faces.Items))
}
