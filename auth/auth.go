// Package auth makes and checks faced API keys.
//
// A key is "<id>.<secret>": a 12-hex-digit id that names the key (safe to
// log and list) and a 256-bit random secret in base64url. Only the
// secret's SHA-256 is stored. A fast hash is enough here, unlike for
// passwords: the secret has 256 bits of entropy, so there is nothing to
// brute-force, and verification must stay cheap on every request. Hashes
// are compared in constant time.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Scopes a key may hold. Admin implies write, write implies read.
const (
	ScopeRead  = "read"  // detect, verify, identify, liveness, lookups
	ScopeWrite = "write" // enrol, update, delete
	ScopeAdmin = "admin" // keys, configuration
)

// AllScopes lists the scopes in increasing power.
var AllScopes = []string{ScopeRead, ScopeWrite, ScopeAdmin}

// Door scopes let a key ask a door to decide (POST /v1/doors/{id}/decide):
// "door:<id>" for one door, "door:*" for every door. They stand apart from
// the ranked scopes: a door controller's key holds read and its door's
// scope, so a stolen key opens that door at most; admin may decide at
// every door.
const doorScopePrefix = "door:"

// DoorScope is the scope a key needs to decide at door id.
func DoorScope(id string) string { return doorScopePrefix + id }

func validDoorScope(sc string) bool {
	id, ok := strings.CutPrefix(sc, doorScopePrefix)
	if !ok || id == "" || len(id) > 64 {
		return false
	}
	if id == "*" {
		return true
	}
	for i, r := range id {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || (i > 0 && (r == '.' || r == '_' || r == '-'))
		if !ok {
			return false
		}
	}
	return true
}

// ErrMalformed reports a token that is not "<id>.<secret>".
var ErrMalformed = errors.New("auth: malformed API key")

// Key is a newly made key: Token is shown to the user once, Hash stored.
type Key struct {
	ID    string
	Token string
	Hash  []byte
}

// NewKey makes a random key.
func NewKey() (Key, error) {
	var id [6]byte
	var secret [32]byte
	if _, err := rand.Read(id[:]); err != nil {
		return Key{}, fmt.Errorf("auth: %w", err)
	}
	if _, err := rand.Read(secret[:]); err != nil {
		return Key{}, fmt.Errorf("auth: %w", err)
	}
	s := base64.RawURLEncoding.EncodeToString(secret[:])
	k := Key{ID: hex.EncodeToString(id[:]), Hash: HashSecret(s)}
	k.Token = k.ID + "." + s
	return k, nil
}

// HashSecret is the stored form of a secret.
func HashSecret(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// Parse splits a token into its id and secret.
func Parse(token string) (id, secret string, err error) {
	id, secret, ok := strings.Cut(strings.TrimSpace(token), ".")
	if !ok || !ValidID(id) || secret == "" || len(secret) > MaxSecretLen {
		return "", "", ErrMalformed
	}
	return id, secret, nil
}

// MaxSecretLen bounds the secret part of a token.
const MaxSecretLen = 128

// ValidID reports whether id can be a key's id: 12 hex digits, as NewKey
// makes them and Parse accepts them.
func ValidID(id string) bool {
	if len(id) != 12 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

// Matches reports, in constant time, whether secret hashes to hash.
func Matches(secret string, hash []byte) bool {
	return subtle.ConstantTimeCompare(HashSecret(secret), hash) == 1
}

// ParseScopes reads a comma-separated scope list.
func ParseScopes(s string) ([]string, error) {
	var out []string
	for _, sc := range strings.Split(s, ",") {
		sc = strings.TrimSpace(sc)
		if sc == "" {
			continue
		}
		if !slices.Contains(AllScopes, sc) && !validDoorScope(sc) {
			return nil, fmt.Errorf("auth: unknown scope %q (want read, write, admin, or door:<id> / door:* to decide at doors)", sc)
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("auth: a key needs at least one scope")
	}
	return out, nil
}

// Allows reports whether a key holding scopes may do what need requires.
func Allows(scopes []string, need string) bool {
	if strings.HasPrefix(need, doorScopePrefix) {
		return slices.Contains(scopes, need) || slices.Contains(scopes, doorScopePrefix+"*") || slices.Contains(scopes, ScopeAdmin)
	}
	rank := func(s string) int { return slices.Index(AllScopes, s) }
	for _, s := range scopes {
		if rank(s) >= rank(need) && rank(need) >= 0 {
			return true
		}
	}
	return false
}
