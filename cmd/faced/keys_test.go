package main

import (
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/facedhq/faced/auth"
	"github.com/facedhq/faced/daemon"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// authenticate opens the store of dataDir (the command must have closed
// it) and checks token for the scope need.
func authenticate(t *testing.T, dataDir, token, need string) (store.APIKey, error) {
	t.Helper()
	db, err := store.Open(daemon.DBPath(dataDir), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return service.Authenticate(t.Context(), db, token, need)
}

// addKey runs keys add and returns the token it printed.
func addKey(t *testing.T, dataDir, name, scopes string) (token string) {
	t.Helper()
	out, errOut, err := faced(t, "keys", "add", "--data-dir", dataDir, "--name", name, "--scopes", scopes)
	if err != nil {
		t.Fatalf("keys add: %v\nstderr:\n%s", err, errOut)
	}
	token = strings.TrimSuffix(out, "\n")
	if strings.ContainsAny(token, " \n\t") {
		t.Fatalf("keys add stdout is not just the token: %q", out)
	}
	id, _, err := auth.Parse(token)
	if err != nil {
		t.Fatalf("keys add printed %q, not a token: %v", token, err)
	}
	if !strings.Contains(errOut, "not be shown again") || !strings.Contains(errOut, id) {
		t.Errorf("keys add stderr lacks the key id or the shown-once hint: %q", errOut)
	}
	if strings.Contains(errOut, token) {
		t.Error("keys add printed the token twice")
	}
	return token
}

func TestKeysAddListRevoke(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // created by keys add
	token := addKey(t, dir, "door camera", "read,write")
	id, secret, _ := auth.Parse(token)

	k, err := authenticate(t, dir, token, auth.ScopeWrite)
	if err != nil {
		t.Fatalf("Authenticate(write): %v", err)
	}
	if k.ID != id || k.Name != "door camera" {
		t.Errorf("authenticated key %q %q, want %q %q", k.ID, k.Name, id, "door camera")
	}
	if _, err := authenticate(t, dir, token, auth.ScopeRead); err != nil {
		t.Errorf("Authenticate(read): %v", err)
	}
	if _, err := authenticate(t, dir, token, auth.ScopeAdmin); !errors.Is(err, service.ErrForbidden) {
		t.Errorf("Authenticate(admin) = %v, want ErrForbidden", err)
	}

	other := addKey(t, dir, "admin console", "admin")
	if other == token {
		t.Fatal("two keys share a token")
	}

	out := mustFaced(t, "keys", "list", "--data-dir", dir)
	for _, want := range []string{"ID", "NAME", id, "door camera", "read,write", "admin console"} {
		if !strings.Contains(out, want) {
			t.Errorf("keys list lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, secret) || strings.Contains(out, token) {
		t.Errorf("keys list shows a secret:\n%s", out)
	}

	var listed []struct {
		ID      string     `json:"id"`
		Name    string     `json:"name"`
		Scopes  []string   `json:"scopes"`
		Created time.Time  `json:"created"`
		Revoked *time.Time `json:"revoked"`
	}
	out = mustFaced(t, "keys", "list", "--data-dir", dir, "--json")
	if strings.Contains(out, secret) {
		t.Errorf("keys list --json shows the secret:\n%s", out)
	}
	if err := json.Unmarshal([]byte(out), &listed); err != nil {
		t.Fatalf("keys list --json: %v\n%s", err, out)
	}
	if len(listed) != 2 {
		t.Fatalf("keys list --json: %d keys, want 2:\n%s", len(listed), out)
	}
	for _, l := range listed {
		if l.ID == id && (l.Name != "door camera" || strings.Join(l.Scopes, ",") != "read,write" || l.Created.IsZero() || l.Revoked != nil) {
			t.Errorf("keys list --json: %+v", l)
		}
	}

	// Flags after the ID work too.
	out = mustFaced(t, "keys", "revoke", id, "--data-dir", dir)
	if !strings.Contains(out, id) {
		t.Errorf("keys revoke printed %q, want the id", out)
	}
	if _, err := authenticate(t, dir, token, auth.ScopeRead); !errors.Is(err, service.ErrUnauthorized) {
		t.Errorf("Authenticate after revoke = %v, want ErrUnauthorized", err)
	}
	if _, err := authenticate(t, dir, other, auth.ScopeAdmin); err != nil {
		t.Errorf("revoking one key broke another: %v", err)
	}
	mustFaced(t, "keys", "revoke", "--data-dir", dir, id) // again: harmless

	out = mustFaced(t, "keys", "list", "--data-dir", dir, "--json")
	listed = nil
	if err := json.Unmarshal([]byte(out), &listed); err != nil {
		t.Fatal(err)
	}
	for _, l := range listed {
		if (l.ID == id) != (l.Revoked != nil) {
			t.Errorf("after revoke: key %s revoked = %v", l.ID, l.Revoked)
		}
	}
}

func TestKeysListEmpty(t *testing.T) {
	dir := t.TempDir()
	out := mustFaced(t, "keys", "list", "--data-dir", dir, "--json")
	if strings.TrimSpace(out) != "[]" {
		t.Errorf("keys list --json on an empty dir = %q, want []", out)
	}
	if out := mustFaced(t, "keys", "list", "--data-dir", dir); out != "" {
		t.Errorf("keys list on an empty dir printed %q", out)
	}
}

func TestKeysErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"add", "--scopes", "read"}, "--name"},
		{[]string{"add", "--name", "x"}, "at least one scope"},
		{[]string{"add", "--name", "x", "--scopes", "read,root"}, `unknown scope "root"`},
		{[]string{"revoke"}, "exactly one"},
		{[]string{"revoke", "a", "b"}, "exactly one"},
	} {
		args := append([]string{"keys"}, tc.args...)
		args = append(args, "--data-dir", dir)
		if _, _, err := faced(t, args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("faced %s: err = %v, want %q", strings.Join(args, " "), err, tc.want)
		}
	}
	// An unknown id, both with no store yet and with one.
	if _, _, err := faced(t, "keys", "revoke", "--data-dir", dir, "0123456789ab"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoke unknown id (no store): err = %v, want ErrNotFound", err)
	}
	addKey(t, dir, "k", "read")
	if _, _, err := faced(t, "keys", "revoke", "--data-dir", dir, "0123456789ab"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoke unknown id: err = %v, want ErrNotFound", err)
	}
}

// TestKeysDaemonRunning: with the store held by another process that
// does not answer on the control socket (not a faced daemon, or one
// still starting), the keys verbs refuse and say why.
func TestKeysDaemonRunning(t *testing.T) {
	dir := t.TempDir()
	token := addKey(t, dir, "k", "read")
	id, _, _ := auth.Parse(token)
	db, err := store.Open(daemon.DBPath(dir), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, args := range [][]string{
		{"keys", "add", "--data-dir", dir, "--name", "n", "--scopes", "read"},
		{"keys", "revoke", "--data-dir", dir, id},
		{"keys", "list", "--data-dir", dir},
	} {
		_, _, err := faced(t, args...)
		if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), "no faced daemon answers") {
			t.Errorf("faced %s with the store locked: err = %v, want the daemon-running error", strings.Join(args, " "), err)
		}
	}
}

// keys hash prints what a configuration file's secret_sha256 needs: the
// hex SHA-256 of the secret on stdin, which then authenticates the token.
func TestKeysHash(t *testing.T) {
	hash := func(in string) (string, error) {
		t.Helper()
		old := stdin
		stdin = strings.NewReader(in)
		defer func() { stdin = old }()
		out, _, err := faced(t, "keys", "hash")
		return out, err
	}
	const secret = "k7Qw1v3l9OQ3Pq0wU4jx2pIY1n0m9V1sZl8H3yX5cR4"
	for _, in := range []string{secret, secret + "\n", secret + "\r\n"} {
		out, err := hash(in)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		// Computed outside the code under test:
		//   printf %s "$secret" | sha256sum
		if want := "a89c9928463b55acdcd37c16a1adf2a1231b8816fda51235591db10986a4908f\n"; out != want {
			t.Errorf("%q: printed %q, want %q", in, out, want)
		}
	}
	for _, in := range []string{"", "\n", "short", "two words in here, long enough", "0123456789ab." + secret + "\n" + secret, strings.Repeat("x", 200)} {
		if out, err := hash(in); err == nil {
			t.Errorf("%q accepted: %q", in, out)
		}
	}
	if _, _, err := faced(t, "keys", "hash", secret); err == nil || !strings.Contains(err.Error(), "stdin") {
		t.Errorf("secret as an argument: %v, want it refused", err)
	}
}

// TestKeysWhileServing: the keys verbs work on a running daemon's data
// directory (the daemon holds the store's lock, so they go through its
// control socket), and a revocation takes effect at once, without a
// restart (issue 12). On a long data directory, too (issue 12 #10).
func TestKeysWhileServing(t *testing.T) {
	dir := longDir(t)
	token := addKey(t, dir, "door-1", "read")
	id, _, _ := auth.Parse(token)
	addr := freeAddr(t)
	c := startChild(t, nil, nil, false, "serve", "--data-dir", dir, "--listen", addr, "--attributes=false")
	c.waitLog(t, "msg=serving")
	device := func(tok string) int {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+addr+"/v1/device", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := device(token); got != http.StatusOK {
		t.Fatalf("before revocation: %d", got)
	}

	out := mustFaced(t, "keys", "revoke", id, "--data-dir", dir)
	if !strings.Contains(out, "revoked") {
		t.Errorf("keys revoke printed %q", out)
	}
	if got := device(token); got != http.StatusUnauthorized {
		t.Fatalf("after keys revoke on the running daemon: %d, want 401 at once", got)
	}
	if out := mustFaced(t, "keys", "revoke", id, "--data-dir", dir); !strings.Contains(out, "already revoked") {
		t.Errorf("second revoke printed %q", out)
	}
	if _, _, err := faced(t, "keys", "revoke", "0123456789ab", "--data-dir", dir); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoke of an unknown id through the daemon: %v, want ErrNotFound", err)
	}

	// add and list go the same way.
	newToken := strings.TrimSpace(mustFaced(t, "keys", "add", "--data-dir", dir, "--name", "door-2", "--scopes", "read"))
	if got := device(newToken); got != http.StatusOK {
		t.Fatalf("key added through the running daemon: %d", got)
	}
	var infos []keyInfo
	if err := json.Unmarshal([]byte(mustFaced(t, "keys", "list", "--json", "--data-dir", dir)), &infos); err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 {
		t.Fatalf("keys list: %+v", infos)
	}
	for _, k := range infos {
		if (k.ID == id) != (k.Revoked != nil) {
			t.Errorf("keys list: %+v", k)
		}
	}
	c.signal(t, syscall.SIGTERM)
	c.wait(t)
}
