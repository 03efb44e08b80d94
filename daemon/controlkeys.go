package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// KeyInfo is what the control socket tells of a key: never its hash.
type KeyInfo struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Scopes    []string   `json:"scopes"`
	CreatedAt time.Time  `json:"created"`
	RevokedAt *time.Time `json:"revoked"`
	// Token is set once, by AddKey: the key's "<id>.<secret>".
	Token string `json:"token,omitempty"`
	// AlreadyRevoked is set by RevokeKey when the key was revoked before.
	AlreadyRevoked bool `json:"already_revoked,omitempty"`
}

// KeyInfoOf is k as the keys verbs show it.
func KeyInfoOf(k store.APIKey) KeyInfo {
	info := KeyInfo{ID: k.ID, Name: k.Name, Scopes: k.Scopes, CreatedAt: k.CreatedAt.UTC()}
	if info.Scopes == nil {
		info.Scopes = []string{}
	}
	if k.RevokedAt != nil {
		t := k.RevokedAt.UTC()
		info.RevokedAt = &t
	}
	return info
}

// controlError is a failed control request on the wire.
type controlError struct {
	Error    string `json:"error"`
	NotFound bool   `json:"not_found,omitempty"`
	Invalid  bool   `json:"invalid,omitempty"`
}

// registerKeyRoutes serves the keys verbs. They log what changed (ids and
// names, never tokens).
func registerKeyRoutes(mux *http.ServeMux, db *store.DB, logger *slog.Logger) {
	fail := func(w http.ResponseWriter, err error) {
		status, ce := http.StatusInternalServerError, controlError{Error: err.Error()}
		switch {
		case errors.Is(err, store.ErrNotFound):
			status, ce.NotFound = http.StatusNotFound, true
		case errors.Is(err, store.ErrInvalid), errors.Is(err, service.ErrInvalid):
			status, ce.Invalid = http.StatusBadRequest, true
		}
		writeControlJSON(w, status, ce)
	}
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		keys, err := db.ListAPIKeys(r.Context())
		if err != nil {
			fail(w, err)
			return
		}
		infos := make([]KeyInfo, 0, len(keys))
		for _, k := range keys {
			infos = append(infos, KeyInfoOf(k))
		}
		writeControlJSON(w, http.StatusOK, infos)
	})
	mux.HandleFunc("POST /keys", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Name   string   `json:"name"`
			Scopes []string `json:"scopes"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&in); err != nil {
			fail(w, fmt.Errorf("%w: body: %v", store.ErrInvalid, err))
			return
		}
		k, err := service.CreateAPIKey(r.Context(), db, in.Name, in.Scopes, time.Now())
		if err != nil {
			fail(w, err)
			return
		}
		stored, err := db.GetAPIKey(r.Context(), k.ID)
		if err != nil {
			fail(w, err)
			return
		}
		logger.Info("API key added over the control socket", "id", k.ID, "name", in.Name)
		info := KeyInfoOf(stored)
		info.Token = k.Token
		writeControlJSON(w, http.StatusCreated, info)
	})
	mux.HandleFunc("POST /keys/{id}/revoke", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		k, err := db.GetAPIKey(r.Context(), id)
		if err != nil {
			fail(w, err)
			return
		}
		already := k.RevokedAt != nil
		if !already {
			if err := db.RevokeAPIKey(r.Context(), id, time.Now()); err != nil {
				fail(w, err)
				return
			}
			if k, err = db.GetAPIKey(r.Context(), id); err != nil {
				fail(w, err)
				return
			}
			logger.Warn("API key revoked over the control socket; refused from now on", "id", k.ID, "name", k.Name)
		}
		info := KeyInfoOf(k)
		info.AlreadyRevoked = already
		writeControlJSON(w, http.StatusOK, info)
	})
}

func writeControlJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// controlJSON sends one request to the daemon's control socket and decodes
// its JSON answer into out. A failure the daemon reports wraps
// store.ErrNotFound or store.ErrInvalid as the daemon saw it.
func controlJSON(ctx context.Context, dataDir, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://faced"+path, body)
	if err != nil {
		return err
	}
	resp, err := controlClient(dataDir).Do(req)
	if err != nil {
		return fmt.Errorf("control: no faced daemon answers on %s: %w", ControlSocketPath(dataDir), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("control: read the daemon's answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var ce controlError
		if json.Unmarshal(b, &ce) != nil || ce.Error == "" {
			return fmt.Errorf("control: daemon answered %s", resp.Status)
		}
		switch {
		case ce.NotFound:
			return fmt.Errorf("daemon: %s: %w", ce.Error, store.ErrNotFound)
		case ce.Invalid:
			return fmt.Errorf("daemon: %s: %w", ce.Error, store.ErrInvalid)
		}
		return fmt.Errorf("daemon: %s", ce.Error)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("control: the daemon's answer: %w", err)
	}
	return nil
}

// ListKeysFromDaemon lists the keys of the daemon running on dataDir.
func ListKeysFromDaemon(ctx context.Context, dataDir string) ([]KeyInfo, error) {
	var out []KeyInfo
	err := controlJSON(ctx, dataDir, http.MethodGet, "/keys", nil, &out)
	return out, err
}

// AddKeyViaDaemon creates a key in the store of the daemon running on
// dataDir; the answer's Token is shown once.
func AddKeyViaDaemon(ctx context.Context, dataDir, name string, scopes []string) (KeyInfo, error) {
	var out KeyInfo
	err := controlJSON(ctx, dataDir, http.MethodPost, "/keys", map[string]any{"name": name, "scopes": scopes}, &out)
	return out, err
}

// RevokeKeyViaDaemon revokes a key in the store of the daemon running on
// dataDir; the daemon refuses it from its next request on.
func RevokeKeyViaDaemon(ctx context.Context, dataDir, id string) (KeyInfo, error) {
	var out KeyInfo
	err := controlJSON(ctx, dataDir, http.MethodPost, "/keys/"+url.PathEscape(id)+"/revoke", nil, &out)
	return out, err
}
