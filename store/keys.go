package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/bbolt"
)

// APIKey is a credential for the HTTP API. The store only ever sees Hash
// (the caller hashes the secret, e.g. sha256 of a high-entropy token): a
// stolen backup must not hand out working keys.
type APIKey struct {
	ID, Name  string
	Hash      []byte
	Scopes    []string
	CreatedAt time.Time
	RevokedAt *time.Time // nil while the key is valid
}

const maxHashLen = 128

type apiKeyRecord struct {
	Name      string   `json:"n,omitempty"`
	Hash      []byte   `json:"h"`
	Scopes    []string `json:"s,omitempty"`
	CreatedAt int64    `json:"c"`
	RevokedAt int64    `json:"r,omitempty"`
}

func decodeAPIKey(id string, v []byte) (APIKey, error) {
	var r apiKeyRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return APIKey{}, fmt.Errorf("%w: api key %q: %v", ErrCorrupt, id, err)
	}
	k := APIKey{ID: id, Name: r.Name, Hash: r.Hash, Scopes: r.Scopes, CreatedAt: fromUnixNano(r.CreatedAt)}
	if r.RevokedAt != 0 {
		t := fromUnixNano(r.RevokedAt)
		k.RevokedAt = &t
	}
	return k, nil
}

func encodeAPIKey(k *APIKey) ([]byte, error) {
	r := apiKeyRecord{Name: k.Name, Hash: k.Hash, Scopes: k.Scopes, CreatedAt: unixNano(k.CreatedAt)}
	if k.RevokedAt != nil {
		r.RevokedAt = unixNano(*k.RevokedAt)
	}
	return json.Marshal(r)
}

func checkAPIKey(k *APIKey) error {
	if err := checkID("key id", k.ID); err != nil {
		return err
	}
	if err := checkText("key name", k.Name, maxTextLen); err != nil {
		return err
	}
	if len(k.Hash) == 0 || len(k.Hash) > maxHashLen {
		return fmt.Errorf("%w: key hash is %d bytes, want 1..%d", ErrInvalid, len(k.Hash), maxHashLen)
	}
	for _, s := range k.Scopes {
		if err := checkID("scope", s); err != nil {
			return err
		}
	}
	return nil
}

// PutAPIKey creates or replaces a key. Two keys cannot share a hash
// (ErrDuplicate): the hash is how a presented secret finds its key.
// CreatedAt defaults to now; a replaced key keeps its original CreatedAt
// unless one is given.
func (db *DB) PutAPIKey(ctx context.Context, k APIKey) error {
	err := func() error {
		if err := checkAPIKey(&k); err != nil {
			return err
		}
		k.Hash, k.Scopes = bytes.Clone(k.Hash), slices.Clone(k.Scopes)
		return db.update(ctx, func(tx *bbolt.Tx) error {
			keys, byHash := tx.Bucket(bucketAPIKeys), tx.Bucket(bucketAPIKeysByHash)
			if owner := byHash.Get(k.Hash); owner != nil && string(owner) != k.ID {
				return fmt.Errorf("%w: hash belongs to key %q", ErrDuplicate, owner)
			}
			if v := keys.Get([]byte(k.ID)); v != nil {
				old, err := decodeAPIKey(k.ID, v)
				if err != nil {
					return err
				}
				if err := byHash.Delete(old.Hash); err != nil {
					return err
				}
				if k.CreatedAt.IsZero() {
					k.CreatedAt = old.CreatedAt
				}
			}
			if k.CreatedAt.IsZero() {
				k.CreatedAt = db.now()
			}
			rec, err := encodeAPIKey(&k)
			if err != nil {
				return err
			}
			if err := byHash.Put(k.Hash, []byte(k.ID)); err != nil {
				return err
			}
			return keys.Put([]byte(k.ID), rec)
		})
	}()
	if err != nil {
		return fmt.Errorf("store: put api key %q: %w", k.ID, err)
	}
	return nil
}

// GetAPIKey returns a key by id, revoked or not.
func (db *DB) GetAPIKey(ctx context.Context, id string) (APIKey, error) {
	var k APIKey
	err := db.view(ctx, func(tx *bbolt.Tx) (err error) {
		v := tx.Bucket(bucketAPIKeys).Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		k, err = decodeAPIKey(id, v)
		return err
	})
	if err != nil {
		return APIKey{}, fmt.Errorf("store: get api key %q: %w", id, err)
	}
	return k, nil
}

// APIKeyByHash finds the key a presented secret hashes to, revoked or not
// (the caller decides what a revoked key means). This is the lookup that
// authentication does on every request.
func (db *DB) APIKeyByHash(ctx context.Context, hash []byte) (APIKey, error) {
	var k APIKey
	err := db.view(ctx, func(tx *bbolt.Tx) (err error) {
		if len(hash) == 0 {
			return ErrNotFound
		}
		id := tx.Bucket(bucketAPIKeysByHash).Get(hash)
		if id == nil {
			return ErrNotFound
		}
		v := tx.Bucket(bucketAPIKeys).Get(id)
		if v == nil {
			return fmt.Errorf("%w: hash index names missing key %q", ErrCorrupt, id)
		}
		k, err = decodeAPIKey(string(id), v)
		return err
	})
	if err != nil {
		// Never log the hash: it is as good as the key to an offline attacker.
		return APIKey{}, fmt.Errorf("store: api key by hash: %w", err)
	}
	return k, nil
}

// ListAPIKeys returns every key in id order. A device has a handful, so
// there is no paging.
func (db *DB) ListAPIKeys(ctx context.Context) ([]APIKey, error) {
	var keys []APIKey
	err := db.view(ctx, func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketAPIKeys).ForEach(func(k, v []byte) error {
			key, err := decodeAPIKey(string(k), v)
			keys = append(keys, key)
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: list api keys: %w", err)
	}
	return keys, nil
}

// RevokeAPIKey marks a key revoked at the given time. Revoking again keeps
// the first time: audits care when a key stopped working.
func (db *DB) RevokeAPIKey(ctx context.Context, id string, at time.Time) error {
	err := db.update(ctx, func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketAPIKeys)
		v := b.Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		k, err := decodeAPIKey(id, v)
		if err != nil {
			return err
		}
		if k.RevokedAt != nil {
			return nil
		}
		if at.IsZero() {
			at = db.now()
		}
		at = normTime(at)
		k.RevokedAt = &at
		rec, err := encodeAPIKey(&k)
		if err != nil {
			return err
		}
		return b.Put([]byte(id), rec)
	})
	if err != nil {
		return fmt.Errorf("store: revoke api key %q: %w", id, err)
	}
	return nil
}
