// Package apitest sets up what HTTP API tests share: the default models,
// loaded once per test binary, and a fresh store and service with one API
// key per scope.
package apitest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/facedhq/faced/daemon"
	"github.com/facedhq/faced/internal/visiontest"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// Main loads the default models into *vision, runs the tests and exits.
// Loading the models is the slow part of API tests, so it happens once.
func Main(m *testing.M, vision **daemon.Vision) {
	visiontest.MainWith(m, vision, daemon.DefaultVision())
}

// Fixture is a fresh store and service with a token per scope.
type Fixture struct {
	DB    *store.DB
	Svc   *service.Service
	Read  string // read
	Write string // read and write
	Admin string // admin
}

// New opens a store in a temporary directory and a service over it.
func New(t testing.TB, v *daemon.Vision) *Fixture {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "faced.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	svc, err := service.New(context.Background(), db, v.Pipeline, service.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := &Fixture{DB: db, Svc: svc}
	for _, k := range []struct {
		dst    *string
		scopes []string
	}{{&f.Read, []string{"read"}}, {&f.Write, []string{"read", "write"}}, {&f.Admin, []string{"admin"}}} {
		key, err := service.CreateAPIKey(context.Background(), db, "test", k.scopes, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		*k.dst = key.Token
	}
	return f
}
