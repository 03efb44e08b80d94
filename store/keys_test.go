package store

import (
	"crypto/sha256"
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestAPIKeys(t *testing.T) {
	clk := newClock()
	db, _ := openTest(t, Options{Now: clk.Now})
	h1, h2 := sha256.Sum256([]byte("secret-1")), sha256.Sum256([]byte("secret-2"))
	k1 := APIKey{ID: "k1", Name: "door controller", Hash: h1[:], Scopes: []string{"recognize", "events:read"}}
	if err := db.PutAPIKey(ctx, k1); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetAPIKey(ctx, "k1")
	k1.CreatedAt = clk.Now()
	if err != nil || !reflect.DeepEqual(got, k1) {
		t.Errorf("GetAPIKey = %+v, %v\nwant %+v", got, err, k1)
	}
	if byHash, err := db.APIKeyByHash(ctx, h1[:]); err != nil || byHash.ID != "k1" {
		t.Errorf("APIKeyByHash = %+v, %v", byHash, err)
	}

	tests := []struct {
		name string
		k    APIKey
		want error
	}{
		{"hash taken by another key", APIKey{ID: "k2", Hash: h1[:]}, ErrDuplicate},
		{"no hash", APIKey{ID: "k2"}, ErrInvalid},
		{"no id", APIKey{Hash: h2[:]}, ErrInvalid},
		{"empty scope", APIKey{ID: "k2", Hash: h2[:], Scopes: []string{""}}, ErrInvalid},
		{"ok", APIKey{ID: "k2", Hash: h2[:]}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, "PutAPIKey", db.PutAPIKey(ctx, tt.k), tt.want)
		})
	}

	// Rotating k1's secret replaces the hash index entry and keeps CreatedAt.
	h3 := sha256.Sum256([]byte("secret-3"))
	clk.Advance(time.Hour)
	if err := db.PutAPIKey(ctx, APIKey{ID: "k1", Name: "rotated", Hash: h3[:]}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.APIKeyByHash(ctx, h1[:]); !errors.Is(err, ErrNotFound) {
		t.Errorf("old hash still resolves: %v", err)
	}
	if k, _ := db.APIKeyByHash(ctx, h3[:]); k.ID != "k1" || !k.CreatedAt.Equal(k1.CreatedAt) {
		t.Errorf("rotated key %+v", k)
	}

	at := clk.Now().Add(time.Minute)
	if err := db.RevokeAPIKey(ctx, "k2", at); err != nil {
		t.Fatal(err)
	}
	if err := db.RevokeAPIKey(ctx, "k2", at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if k, _ := db.GetAPIKey(ctx, "k2"); k.RevokedAt == nil || !k.RevokedAt.Equal(at) {
		t.Errorf("RevokedAt = %v, want the first revocation %v", k.RevokedAt, at)
	}
	wantErr(t, "RevokeAPIKey(missing)", db.RevokeAPIKey(ctx, "nope", at), ErrNotFound)
	_, err = db.GetAPIKey(ctx, "nope")
	wantErr(t, "GetAPIKey(missing)", err, ErrNotFound)

	keys, err := db.ListAPIKeys(ctx)
	if err != nil || len(keys) != 2 || keys[0].ID != "k1" || keys[1].RevokedAt == nil {
		t.Errorf("ListAPIKeys = %+v, %v", keys, err)
	}
	mustCheck(t, db)
}
