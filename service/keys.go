package service

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/facedhq/faced/auth"
	"github.com/facedhq/faced/store"
)

// ErrUnauthorized reports a missing, malformed, unknown or revoked key; the
// APIs answer 401 without saying which.
var ErrUnauthorized = errors.New("unauthorized")

// ErrForbidden reports a valid key without the scope a request needs.
var ErrForbidden = errors.New("forbidden")

// CreateAPIKey stores a new key and returns it; its token is shown once and
// only its hash is kept. It works on a store without the models loaded, as
// `faced keys add` does while the daemon is stopped.
func CreateAPIKey(ctx context.Context, db *store.DB, name string, scopes []string, now time.Time) (auth.Key, error) {
	if name == "" {
		return auth.Key{}, fmt.Errorf("%w: a key needs a name", ErrInvalid)
	}
	if _, err := auth.ParseScopes(strings.Join(scopes, ",")); err != nil {
		return auth.Key{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	k, err := auth.NewKey()
	if err != nil {
		return auth.Key{}, err
	}
	if err := db.PutAPIKey(ctx, store.APIKey{ID: k.ID, Name: name, Hash: k.Hash, Scopes: scopes, CreatedAt: now}); err != nil {
		return auth.Key{}, fmt.Errorf("service: store key: %w", err)
	}
	return k, nil
}

// Authenticate checks a token against the store and the scope a request
// needs.
func Authenticate(ctx context.Context, db *store.DB, token, need string) (store.APIKey, error) {
	id, secret, err := auth.Parse(token)
	if err != nil {
		return store.APIKey{}, ErrUnauthorized
	}
	k, err := db.GetAPIKey(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		// Hash anyway, so unknown ids take as long as wrong secrets.
		auth.Matches(secret, nil)
		return store.APIKey{}, ErrUnauthorized
	}
	if err != nil {
		return store.APIKey{}, fmt.Errorf("service: look up key: %w", err)
	}
	if !auth.Matches(secret, k.Hash) || k.RevokedAt != nil {
		return store.APIKey{}, ErrUnauthorized
	}
	if !auth.Allows(k.Scopes, need) {
		return k, fmt.Errorf("%w: key %s lacks the %s scope", ErrForbidden, k.ID, need)
	}
	return k, nil
}

// Authenticate checks a request's key (see the package-level function).
func (s *Service) Authenticate(ctx context.Context, token, need string) (store.APIKey, error) {
	return Authenticate(ctx, s.store, token, need)
}

// Provisioned says what ProvisionAPIKey did.
type Provisioned int

// What ProvisionAPIKey can do with a key.
const (
	KeyCreated   Provisioned = iota // the id was new
	KeyUpdated                      // name, hash or scopes changed
	KeyUnchanged                    // already stored as given: nothing written
	KeyRevoked                      // revoked in the store: left revoked, untouched
)

func (p Provisioned) String() string {
	switch p {
	case KeyCreated:
		return "created"
	case KeyUpdated:
		return "updated"
	case KeyUnchanged:
		return "unchanged"
	case KeyRevoked:
		return "revoked"
	}
	return fmt.Sprintf("Provisioned(%d)", int(p))
}

// ProvisionAPIKey makes the store hold key id with the given name, secret
// hash (auth.HashSecret of the secret) and scopes: the daemon upserts the
// keys of its configuration file at start, so a key provisioned this way
// authenticates with its "<id>.<secret>" token like one from CreateAPIKey.
//
// A key revoked in the store stays revoked and is not modified (KeyRevoked):
// revocation is the later, deliberate act, and a restart must not undo it;
// give the key a new id to re-issue it. A new key gets CreatedAt now; an
// updated one keeps its original CreatedAt. Like CreateAPIKey it works
// without the models loaded. Two keys cannot share a hash (store.ErrDuplicate).
//
// The read and the write are separate transactions: callers run it at
// start-up, before anything else can change keys.
func ProvisionAPIKey(ctx context.Context, db *store.DB, id, name string, hash []byte, scopes []string, now time.Time) (Provisioned, error) {
	if !auth.ValidID(id) {
		return 0, fmt.Errorf("%w: key id %q: want 12 hex digits", ErrInvalid, id)
	}
	if strings.TrimSpace(name) == "" {
		return 0, fmt.Errorf("%w: key %s needs a name", ErrInvalid, id)
	}
	if len(hash) != sha256.Size {
		return 0, fmt.Errorf("%w: key %s: hash is %d bytes, want a %d-byte SHA-256", ErrInvalid, id, len(hash), sha256.Size)
	}
	scopes, err := auth.ParseScopes(strings.Join(scopes, ","))
	if err != nil {
		return 0, fmt.Errorf("%w: key %s: %v", ErrInvalid, id, err)
	}
	old, err := db.GetAPIKey(ctx, id)
	result := KeyUpdated
	switch {
	case errors.Is(err, store.ErrNotFound):
		result = KeyCreated
	case err != nil:
		return 0, fmt.Errorf("service: provision key %s: %w", id, err)
	case old.RevokedAt != nil:
		return KeyRevoked, nil
	case old.Name == name && bytes.Equal(old.Hash, hash) && slices.Equal(old.Scopes, scopes):
		return KeyUnchanged, nil
	}
	k := store.APIKey{ID: id, Name: name, Hash: hash, Scopes: scopes}
	if result == KeyCreated {
		k.CreatedAt = now
	}
	if err := db.PutAPIKey(ctx, k); err != nil {
		return 0, fmt.Errorf("service: provision key %s: %w", id, err)
	}
	return result, nil
}

// CreateKey stores a new key (CreateAPIKey) for a running daemon: the
// admin page's "create key".
func (s *Service) CreateKey(ctx context.Context, name string, scopes []string) (auth.Key, error) {
	return CreateAPIKey(ctx, s.store, name, scopes, time.Now())
}

// ListKeys returns every key, revoked ones included (hashes only: no
// secret is stored).
func (s *Service) ListKeys(ctx context.Context) ([]store.APIKey, error) {
	keys, err := s.store.ListAPIKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("service: list keys: %w", err)
	}
	return keys, nil
}

// RevokeKey revokes a key; it stops working at its next request.
func (s *Service) RevokeKey(ctx context.Context, id string) error {
	if err := s.store.RevokeAPIKey(ctx, id, time.Now()); err != nil {
		return notFound(fmt.Errorf("service: revoke key %s: %w", id, err), "key", id)
	}
	return nil
}
