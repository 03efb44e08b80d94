package service_test

import (
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/facedhq/faced/auth"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

func openStore(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "faced.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// A provisioned key authenticates with "<id>.<secret>"; provisioning again
// updates or leaves it, never revives a revoked key.
func TestProvisionAPIKey(t *testing.T) {
	ctx := t.Context()
	db := openStore(t)
	const id, secret = "0123456789ab", "s3cret-s3cret-s3cret-s3cret"
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	provision := func(name, secret string, scopes []string, want service.Provisioned) {
		t.Helper()
		got, err := service.ProvisionAPIKey(ctx, db, id, name, auth.HashSecret(secret), scopes, t0.Add(time.Hour))
		if err != nil || got != want {
			t.Fatalf("ProvisionAPIKey(%s, %v) = %v, %v; want %v", name, scopes, got, err, want)
		}
	}

	got, err := service.ProvisionAPIKey(ctx, db, id, "door", auth.HashSecret(secret), []string{"read"}, t0)
	if err != nil || got != service.KeyCreated {
		t.Fatalf("first ProvisionAPIKey = %v, %v", got, err)
	}
	k, err := service.Authenticate(ctx, db, id+"."+secret, auth.ScopeRead)
	if err != nil {
		t.Fatalf("provisioned key does not authenticate: %v", err)
	}
	if k.Name != "door" || !k.CreatedAt.Equal(t0) {
		t.Errorf("stored key %+v", k)
	}
	if _, err := service.Authenticate(ctx, db, id+"."+secret, auth.ScopeWrite); !errors.Is(err, service.ErrForbidden) {
		t.Errorf("read key authorised for write: %v", err)
	}
	if _, err := service.Authenticate(ctx, db, id+".wrong", auth.ScopeRead); !errors.Is(err, service.ErrUnauthorized) {
		t.Errorf("wrong secret: %v", err)
	}

	provision("door", secret, []string{"read"}, service.KeyUnchanged)
	provision("front door", secret, []string{"read", "write"}, service.KeyUpdated)
	if _, err := service.Authenticate(ctx, db, id+"."+secret, auth.ScopeWrite); err != nil {
		t.Errorf("updated scopes not applied: %v", err)
	}
	// A new secret replaces the old one.
	provision("front door", "n3w-s3cret-n3w-s3cret", []string{"read", "write"}, service.KeyUpdated)
	if _, err := service.Authenticate(ctx, db, id+"."+secret, auth.ScopeRead); !errors.Is(err, service.ErrUnauthorized) {
		t.Errorf("old secret still works: %v", err)
	}
	k, err = service.Authenticate(ctx, db, id+".n3w-s3cret-n3w-s3cret", auth.ScopeRead)
	if err != nil {
		t.Fatalf("new secret: %v", err)
	}
	if !k.CreatedAt.Equal(t0) || k.Name != "front door" {
		t.Errorf("updated key %+v: want the original CreatedAt and the new name", k)
	}

	// Revoked stays revoked.
	if err := db.RevokeAPIKey(ctx, id, t0.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	provision("front door", "n3w-s3cret-n3w-s3cret", []string{"admin"}, service.KeyRevoked)
	if _, err := service.Authenticate(ctx, db, id+".n3w-s3cret-n3w-s3cret", auth.ScopeRead); !errors.Is(err, service.ErrUnauthorized) {
		t.Errorf("revoked key revived: %v", err)
	}
	if k, _ := db.GetAPIKey(ctx, id); !slices.Equal(k.Scopes, []string{"read", "write"}) {
		t.Errorf("revoked key modified: %+v", k)
	}
}

func TestProvisionAPIKeyInvalid(t *testing.T) {
	ctx := t.Context()
	db := openStore(t)
	hash := auth.HashSecret("s3cret-s3cret-s3cret")
	for _, tc := range []struct {
		name, id, keyName string
		hash              []byte
		scopes            []string
	}{
		{"short id", "0123", "n", hash, []string{"read"}},
		{"non-hex id", "0123456789zz", "n", hash, []string{"read"}},
		{"no name", "0123456789ab", " ", hash, []string{"read"}},
		{"short hash", "0123456789ab", "n", hash[:16], []string{"read"}},
		{"no scopes", "0123456789ab", "n", hash, nil},
		{"unknown scope", "0123456789ab", "n", hash, []string{"root"}},
	} {
		if _, err := service.ProvisionAPIKey(ctx, db, tc.id, tc.keyName, tc.hash, tc.scopes, time.Now()); !errors.Is(err, service.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", tc.name, err)
		}
	}
	// Two keys cannot share a secret.
	if _, err := service.ProvisionAPIKey(ctx, db, "0123456789ab", "a", hash, []string{"read"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := service.ProvisionAPIKey(ctx, db, "ba9876543210", "b", hash, []string{"read"}, time.Now()); !errors.Is(err, store.ErrDuplicate) {
		t.Errorf("shared hash: %v, want ErrDuplicate", err)
	}
}
