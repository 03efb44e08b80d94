package store

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// crashChildEnv tells the test binary it is TestCrashDuringEnroll's child.
const crashChildEnv = "FACED_STORE_CRASH_CHILD_DB"

// TestHelperEnrollChild is not a test: run as a child process by
// TestCrashDuringEnroll, it enrols persons in a loop and prints each id
// only after CreatePerson has returned, i.e. after the commit was fsynced.
func TestHelperEnrollChild(t *testing.T) {
	path := os.Getenv(crashChildEnv)
	if path == "" {
		t.Skip("helper process for TestCrashDuringEnroll")
	}
	db, err := Open(path, Options{Timeout: 10 * time.Second})
	if err != nil {
		fmt.Printf("error %v\n", err)
		os.Exit(2)
	}
	for i := uint64(0); ; i++ {
		nf := face(i, "g")
		nf.Image = bytes.Repeat([]byte{byte(i)}, 20_000) // bigger commits, more to tear
		p, _, err := db.CreatePerson(ctx, Person{ExternalID: fmt.Sprint("ext-", i)},
			[]NewFace{nf, face(i+1, "g"), face(i+2, "g")},
			OutboxMessage{Topic: "enrol", Payload: []byte(fmt.Sprint(i))})
		if err != nil {
			fmt.Printf("error %v\n", err)
			os.Exit(2)
		}
		fmt.Printf("ack %s\n", p.ID) // os.Stdout is unbuffered
	}
}

// TestCrashDuringEnroll kills an enrolling process with SIGKILL and checks
// that every acknowledged enrolment survived whole and nothing
// half-written did.
func TestCrashDuringEnroll(t *testing.T) {
	if runtime.GOOS == "windows" || runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		t.Skip("needs a killable child process and flock")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustGalleries(t, db, "g")
	db.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperEnrollChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	const want = 200
	var acked []string
	killed := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if id, ok := strings.CutPrefix(line, "ack "); ok {
			acked = append(acked, id)
		} else if strings.HasPrefix(line, "error ") {
			t.Errorf("child: %s", line)
		}
		if len(acked) == want && !killed {
			cmd.Process.Kill() // SIGKILL: no deferred code, no Close
			killed = true
		}
		// Keep reading: acks already in the pipe were committed too.
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child ended after %d acks: %v\n%s", len(acked), err, stderr.String())
	}

	db, err = Open(path, Options{})
	if err != nil {
		t.Fatalf("reopen after kill -9: %v", err)
	}
	defer db.Close()
	for _, id := range acked {
		if _, err := db.GetPerson(ctx, id); err != nil {
			t.Fatalf("acknowledged person %s lost: %v", id, err)
		}
		page, err := db.ListFaces(ctx, ListOptions{PersonID: id})
		if err != nil || len(page.Items) != 3 {
			t.Fatalf("acknowledged person %s has %d faces, %v; want 3", id, len(page.Items), err)
		}
		for _, f := range page.Items {
			if g, err := db.GetFace(ctx, f.ID); err != nil || len(g.Embedding) != 512 {
				t.Fatalf("face %d of %s: %v", f.ID, id, err)
			}
		}
	}
	// No half-written enrolment: every face has its person and embedding,
	// every index entry its record (Check), and every person that exists
	// (including one committed but not yet acknowledged) has all 3 faces.
	mustCheck(t, db)
	st, _ := db.Stats(ctx)
	if st.Persons < len(acked) || st.Persons > len(acked)+1 || st.Faces != 3*st.Persons {
		t.Errorf("%d persons and %d faces after %d acks", st.Persons, st.Faces, len(acked))
	}
	if ob, _ := db.OutboxStats(ctx); ob.Count != st.Persons {
		t.Errorf("%d outbox messages for %d persons", ob.Count, st.Persons)
	}
	t.Logf("%d acknowledged, %d persons on disk after SIGKILL", len(acked), st.Persons)
}
