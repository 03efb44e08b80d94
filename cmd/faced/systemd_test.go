package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/facedhq/faced/auth"
	"github.com/facedhq/faced/daemon"
	"github.com/facedhq/faced/internal/testenv"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// These tests run the real `faced serve` as a child process, as systemd
// would: the test binary re-executes itself as the command (TestMain), so
// signals, NOTIFY_SOCKET and inherited sockets are the real thing.

// childEnv makes the test binary run main instead of the tests.
const childEnv = "GO_FACED_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// child is a `faced serve` process.
type child struct {
	cmd  *exec.Cmd
	log  *testenv.Buffer
	done chan struct{}
	err  error // cmd.Wait's, once done is closed
}

// startChild starts `faced args...` with env added to the test's
// environment (minus any systemd variables of its own). files become fds
// 3, 4, ...; listenPID runs it through sh so that LISTEN_PID is the
// command's own pid, as systemd sets it.
func startChild(t *testing.T, env []string, files []*os.File, listenPID bool, args ...string) *child {
	t.Helper()
	testenv.DepsDir(t)
	var cmd *exec.Cmd
	if listenPID {
		cmd = exec.Command("/bin/sh", append([]string{"-c", `LISTEN_PID=$$ exec "$0" "$@"`, os.Args[0]}, args...)...)
	} else {
		cmd = exec.Command(os.Args[0], args...)
	}
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES":
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	cmd.Env = append(append(cmd.Env, childEnv+"=1"), env...)
	cmd.ExtraFiles = files
	c := &child{cmd: cmd, log: &testenv.Buffer{}, done: make(chan struct{})}
	cmd.Stdout = io.Discard
	cmd.Stderr = c.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			cmd.Process.Kill()
			<-c.done
		}
		if t.Failed() {
			t.Logf("faced log:\n%s", c.log)
		}
	})
	return c
}

// signal sends sig to the command.
func (c *child) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := c.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// wait waits for the command to exit and fails the test unless it exited 0.
func (c *child) wait(t *testing.T) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(60 * time.Second):
		t.Fatal("faced did not exit")
	}
	if c.err != nil {
		t.Fatalf("faced exited: %v", c.err)
	}
}

// waitLog polls the command's log for a line matching want.
func (c *child) waitLog(t *testing.T, want string) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !strings.Contains(c.log.String(), want); time.Sleep(20 * time.Millisecond) {
		select {
		case <-c.done:
			t.Fatalf("faced exited (%v) before logging %q", c.err, want)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("faced did not log %q", want)
		}
	}
}

// notifySocket listens where systemd's notification socket would be and
// returns its path and the messages that arrive on it.
func notifySocket(t *testing.T) (string, <-chan string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	msgs := make(chan string, 1000)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	t.Cleanup(func() { conn.Close() })
	return path, msgs
}

// nextNotify returns the next message, failing the test after a minute.
func nextNotify(t *testing.T, msgs <-chan string) string {
	t.Helper()
	select {
	case m := <-msgs:
		return m
	case <-time.After(60 * time.Second):
		t.Fatal("no sd_notify message")
		return ""
	}
}

// waitNotify skips messages up to the first holding state (e.g.
// "READY=1"), which it returns; skipped receives the ones before it.
func waitNotify(t *testing.T, msgs <-chan string, state string, skipped func(string)) string {
	t.Helper()
	for {
		m := nextNotify(t, msgs)
		if hasState(m, state) {
			return m
		}
		if skipped != nil {
			skipped(m)
		}
	}
}

func hasState(msg, state string) bool {
	for _, l := range strings.Split(msg, "\n") {
		if l == state {
			return true
		}
	}
	return false
}

// freeAddr is a loopback address nothing listens on (a port just freed).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestServeNotify: under systemd (NOTIFY_SOCKET, WATCHDOG_USEC) serve
// says READY=1 only once it serves with its models and store loaded, with
// a STATUS line; then WATCHDOG=1 keeps coming; SIGTERM brings STOPPING=1
// and a clean exit.
func TestServeNotify(t *testing.T) {
	sock, msgs := notifySocket(t)
	addr := freeAddr(t)
	c := startChild(t, []string{"NOTIFY_SOCKET=" + sock, "WATCHDOG_USEC=400000"}, nil, false,
		"serve", "--data-dir", t.TempDir(), "--listen", addr, "--attributes=false")

	ready := waitNotify(t, msgs, "READY=1", func(m string) {
		if hasState(m, "WATCHDOG=1") {
			t.Errorf("watchdog ping before READY: %q", m)
		}
	})
	// At READY the daemon must already answer, with its models loaded:
	// no retry here.
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatalf("READY=1 sent, but: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("READY=1 sent, but /readyz says %s", resp.Status)
	}
	if want := "STATUS=serving on " + addr + ": 0 faces, embedder " + daemon.DefaultVision().Embedder + "@"; !strings.Contains(ready, want) {
		t.Errorf("READY message %q lacks %q", ready, want)
	}
	for range 3 {
		waitNotify(t, msgs, "WATCHDOG=1", nil)
	}

	c.signal(t, syscall.SIGTERM)
	stopping := waitNotify(t, msgs, "STOPPING=1", nil)
	if !strings.Contains(stopping, "STATUS=draining") {
		t.Errorf("STOPPING message %q", stopping)
	}
	c.wait(t)
	if !strings.Contains(c.log.String(), "msg=stopped") {
		t.Errorf("no clean stop in the log")
	}
}

// keyFor is a key's file entry and token.
func keyFor(id, secret string, scopes string) (entry, token string) {
	return fmt.Sprintf("  - id: %s\n    name: key %s\n    secret_sha256: %s\n    scopes: [%s]\n",
		id, id, hex.EncodeToString(auth.HashSecret(secret)), scopes), id + "." + secret
}

// TestServeReload: SIGHUP re-reads the file: a new key authenticates, the
// default threshold and log level change, a restart-only setting is logged
// as ignored, and an open keep-alive connection survives. A bad file keeps
// the running configuration.
func TestServeReload(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "faced.yaml")
	addr := freeAddr(t)
	keyA, tokenA := keyFor("aaaaaaaaaaaa", "secret-a-0123456789abcdef", "read")
	keyB, tokenB := keyFor("bbbbbbbbbbbb", "secret-b-0123456789abcdef", "read")
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(config, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	base := fmt.Sprintf("data_dir: %s\nlisten: %s\nvision:\n  attributes: false\n", filepath.Join(dir, "data"), addr)
	write(base + "log_level: info\nservice:\n  threshold: none\nkeys:\n" + keyA)

	sock, msgs := notifySocket(t)
	c := startChild(t, []string{"NOTIFY_SOCKET=" + sock}, nil, false, "serve", "--config", config)
	waitNotify(t, msgs, "READY=1", nil)

	// One keep-alive connection for the whole test.
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 1}}
	var conns []net.Conn
	do := func(method, path, token, contentType string, body []byte) (int, []byte, bool) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+addr+path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		var reused bool
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused; conns = append(conns, info.Conn) },
		}))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b, reused
	}
	device := func(token string) (int, bool) {
		t.Helper()
		code, _, reused := do("GET", "/v1/device", token, "", nil)
		return code, reused
	}
	// verify two photos without a threshold: the service default applies;
	// "verified" is absent under threshold none.
	var form bytes.Buffer
	mw := multipart.NewWriter(&form)
	for i, name := range []string{"img1.jpg", "img2.jpg"} {
		w, _ := mw.CreateFormFile(fmt.Sprintf("photo%d", i+1), name)
		w.Write(testenv.ReadPhoto(t, "deepface/"+name))
	}
	mw.Close()
	hasVerdict := func() bool {
		t.Helper()
		code, body, _ := do("POST", "/v1/verify", tokenA, mw.FormDataContentType(), form.Bytes())
		var out map[string]json.RawMessage
		if code != http.StatusOK || json.Unmarshal(body, &out) != nil {
			t.Fatalf("verify: %d %s", code, body)
		}
		_, ok := out["verified"]
		return ok
	}

	if code, _ := device(tokenA); code != http.StatusOK {
		t.Fatalf("key A: %d", code)
	}
	if code, _ := device(tokenB); code != http.StatusUnauthorized {
		t.Fatalf("key B before the reload: %d, want 401", code)
	}
	if hasVerdict() {
		t.Fatal("verdict under threshold none")
	}

	// Reload: key B added, threshold strict, debug log, listen changed.
	moved := strings.Replace(base, "listen: "+addr, "listen: 127.0.0.1:1", 1)
	write(moved + "log_level: debug\nservice:\n  threshold: strict\nkeys:\n" + keyA + keyB)
	c.signal(t, syscall.SIGHUP)
	waitNotify(t, msgs, "RELOADING=1", nil)
	if m := nextNotify(t, msgs); !hasState(m, "READY=1") {
		t.Errorf("after RELOADING=1: %q, want READY=1", m)
	}
	c.waitLog(t, "msg=\"configuration reloaded\"")
	for _, want := range []string{
		"level=WARN msg=\"setting changed; ignored until restart\" setting=listen",
		"level=DEBUG msg=\"settings in force\"",
		"msg=\"API key provisioned\" id=bbbbbbbbbbbb",
	} {
		if !strings.Contains(c.log.String(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
	code, reused := device(tokenB)
	if code != http.StatusOK {
		t.Errorf("key B after the reload: %d", code)
	}
	if !reused {
		t.Error("the keep-alive connection did not survive the reload")
	}
	if !hasVerdict() {
		t.Error("threshold not reloaded: no verdict under strict")
	}

	// A bad file: errors logged, the running configuration kept.
	write(base + "log_level: loud\nservice:\n  threshold: strict\n  treshold: low\nkeys:\n" + keyA)
	c.signal(t, syscall.SIGHUP)
	waitNotify(t, msgs, "RELOADING=1", nil)
	waitNotify(t, msgs, "READY=1", nil)
	c.waitLog(t, "service.treshold: unknown field")
	c.waitLog(t, "config: log_level: want debug, info, warn or error")
	if strings.Count(c.log.String(), "reload failed; running configuration kept") < 2 {
		t.Error("each problem of the bad file is not logged")
	}
	if code, reused := device(tokenB); code != http.StatusOK || !reused {
		t.Errorf("after a failed reload: key B %d, connection reused %v", code, reused)
	}
	if !hasVerdict() {
		t.Error("a failed reload changed the threshold")
	}
	if len(conns) == 0 || conns[0] != conns[len(conns)-1] {
		t.Error("requests did not share one connection")
	}

	c.signal(t, syscall.SIGTERM)
	c.wait(t)
}

// TestServeSocketActivation: given a listening socket as fd 3 with
// LISTEN_FDS=1 and LISTEN_PID its own, serve answers on it instead of
// binding listen; a request made while the models load waits in the
// socket's backlog and is answered.
func TestServeSocketActivation(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	// 192.0.2.1 (TEST-NET-1) is not this machine's: binding it would fail.
	c := startChild(t, []string{"LISTEN_FDS=1"}, []*os.File{f}, true,
		"serve", "--data-dir", t.TempDir(), "--listen", "192.0.2.1:8443", "--attributes=false")
	// The child has its copy; the test's go away, so only it can answer.
	f.Close()
	ln.Close()

	resp, err := (&http.Client{Timeout: 90 * time.Second}).Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatalf("request through the passed socket: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz: %s", resp.Status)
	}
	c.waitLog(t, "msg=serving addr="+addr+" ")
	if !strings.Contains(c.log.String(), "listening on the sockets systemd passed") {
		t.Error("log does not say the passed socket is used")
	}
	c.signal(t, syscall.SIGTERM)
	c.wait(t)
}

// TestServeSIGTERMLosesNothing: SIGTERM to the real process while a
// request is in flight and others keep coming: the in-flight one
// completes, every acknowledged enrolment is in the store after exit, and
// the process exits cleanly (HTTP drained before the store closed).
func TestServeSIGTERMLosesNothing(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(daemon.DBPath(dir), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	key, err := service.CreateAPIKey(context.Background(), db, "drain", []string{"write"}, time.Now())
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	photo := testenv.ReadPhoto(t, "deepface/img1.jpg")
	addr := freeAddr(t)
	c := startChild(t, nil, nil, false, "serve", "--data-dir", dir, "--listen", addr, "--attributes=false")
	c.waitLog(t, "msg=serving")

	enrol := func(id string, body io.Reader) (int, error) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/v1/persons?allow_duplicate=true&id="+id, body) // one photo, many ids
		req.ContentLength = int64(len(photo))
		req.Header.Set("Content-Type", "image/jpeg")
		req.Header.Set("Authorization", "Bearer "+key.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}

	// A request whose body is still arriving is in flight.
	body, feed := io.Pipe()
	inflight := make(chan error, 1)
	go func() {
		code, err := enrol("in-flight", body)
		if err == nil && code != http.StatusCreated {
			err = fmt.Errorf("status %d", code)
		}
		inflight <- err
	}()
	go feed.Write(photo[:len(photo)/2])
	for deadline := time.Now().Add(30 * time.Second); !inFlight(t, addr); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the request never reached its handler")
		}
	}

	// Meanwhile, a stream of enrolments.
	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				id := fmt.Sprintf("w%d-%d", g, i)
				code, err := enrol(id, bytes.NewReader(photo))
				if err != nil {
					return // not accepted: the listener is closed
				}
				if code != http.StatusCreated {
					t.Errorf("enrol %s: status %d", id, code)
					return
				}
				mu.Lock()
				acked = append(acked, id)
				mu.Unlock()
			}
		}()
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no enrolment acknowledged")
		}
	}

	c.signal(t, syscall.SIGTERM)
	c.waitLog(t, "shutting down")
	feed.Write(photo[len(photo)/2:])
	feed.Close()
	if err := <-inflight; err != nil {
		t.Errorf("request in flight at SIGTERM: %v", err)
	}
	wg.Wait()
	c.wait(t)

	db, err = store.Open(daemon.DBPath(dir), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, id := range append(acked, "in-flight") {
		if _, err := db.GetPerson(context.Background(), id); err != nil {
			t.Errorf("acknowledged person %s: %v", id, errors.Unwrap(err))
		}
	}
	t.Logf("%d enrolments acknowledged, all stored", len(acked)+1)
}
