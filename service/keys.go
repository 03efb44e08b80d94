package service

import (
	"context"
	"errors"
	"fmt"
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
