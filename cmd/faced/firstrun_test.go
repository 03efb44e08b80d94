package main

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/facedhq/faced/auth"
	"github.com/facedhq/faced/daemon"
	"github.com/facedhq/faced/store"
)

// firstRunLine is the contract of issue #15: one log line holding
// "admin key: <key>" (install scripts read it), with the page's URL.
var firstRunLine = regexp.MustCompile(`admin key: (\S+) page: (\S+)`)

// TestServeFirstRunKey: a daemon started on an empty store creates one
// admin key, prints it once on one log line with the page's URL, keeps
// only its hash, and the key works on the API; a restart on the same
// store creates none.
func TestServeFirstRunKey(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	args := []string{"--listen", "127.0.0.1:0", "--data-dir", data, "--attributes=false"}
	var token string
	t.Run("first start", func(t *testing.T) {
		addr, log := startServe(t, args...)
		var lines []string
		for _, l := range strings.Split(log.String(), "\n") {
			if strings.Contains(l, "admin key: ") {
				lines = append(lines, l)
			}
		}
		if len(lines) != 1 {
			t.Fatalf("%d log lines hold \"admin key: \", want 1:\n%s", len(lines), log)
		}
		m := firstRunLine.FindStringSubmatch(lines[0])
		if m == nil {
			t.Fatalf("first-run line lacks the key and page: %s", lines[0])
		}
		token = m[1]
		if want := "http://" + addr + "/"; m[2] != want {
			t.Errorf("page URL %q, want %q", m[2], want)
		}
		if _, _, err := auth.Parse(token); err != nil {
			t.Fatalf("first-run key %q: %v", token, err)
		}
		if n := strings.Count(log.String(), token); n != 1 {
			t.Errorf("the key appears %d times in the log, want once", n)
		}
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/v1/device", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("GET /v1/device with the first-run key: %d, want 200", res.StatusCode)
		}
		// The page the line points to is the admin page's login.
		res, err = http.Get(m[2])
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || res.Request.URL.Path != "/ui/login" || !strings.Contains(string(body), `name="key"`) {
			t.Errorf("GET %s: %d at %s, want the login page:\n%s", m[2], res.StatusCode, res.Request.URL, body)
		}
	})
	if token == "" {
		return
	}
	t.Run("restart", func(t *testing.T) {
		_, log := startServe(t, args...)
		if strings.Contains(log.String(), "admin key") {
			t.Errorf("a restart on a store with a key printed one:\n%s", log)
		}
	})
	db, err := store.Open(daemon.DBPath(data), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	keys, err := db.ListAPIKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0].Name != daemon.FirstRunKeyName || strings.Join(keys[0].Scopes, ",") != auth.ScopeAdmin {
		t.Fatalf("store keys after two starts: %+v, want the one admin key", keys)
	}
	id, secret, _ := auth.Parse(token)
	if keys[0].ID != id || !auth.Matches(secret, keys[0].Hash) || strings.Contains(string(keys[0].Hash), secret) {
		t.Errorf("stored key %s does not hold the token's hash", keys[0].ID)
	}
}

func TestPageURL(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:8080": "http://127.0.0.1:8080/",
		"0.0.0.0:8080":   "http://localhost:8080/",
		"[::]:8443":      "http://localhost:8443/",
		"[::1]:80":       "http://[::1]:80/",
	} {
		if got := daemon.PageURL(addr, false); got != want {
			t.Errorf("PageURL(%q) = %q, want %q", addr, got, want)
		}
	}
	if got := daemon.PageURL("127.0.0.1:1", true); got != "https://127.0.0.1:1/" {
		t.Errorf("PageURL with TLS = %q", got)
	}
}
