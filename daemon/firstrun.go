package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/facedhq/faced/auth"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// FirstRunKeyName names the key FirstRunKey creates (as `faced keys list`
// shows it).
const FirstRunKeyName = "first-run admin"

// FirstRunKey creates one admin key when the store holds no API key at
// all (none ever made, none provisioned from the configuration), so a
// newcomer reaches the admin page without stopping the daemon to run
// `faced keys add`. It returns the key (whose token is shown once: only
// its hash is stored) and true, or false when the store already has keys.
// A store whose keys were all revoked gets none: revoking is deliberate,
// and `faced keys add` makes a new one.
func FirstRunKey(ctx context.Context, db *store.DB, now time.Time) (auth.Key, bool, error) {
	keys, err := db.ListAPIKeys(ctx)
	if err != nil {
		return auth.Key{}, false, fmt.Errorf("first run: %w", err)
	}
	if len(keys) > 0 {
		return auth.Key{}, false, nil
	}
	k, err := service.CreateAPIKey(ctx, db, FirstRunKeyName, []string{auth.ScopeAdmin}, now)
	if err != nil {
		return auth.Key{}, false, fmt.Errorf("first run: %w", err)
	}
	return k, true, nil
}

// LogFirstRunKey prints the first-run key and the page's URL on one log
// line containing "admin key: <token>" (a contract: install scripts read
// it). It is the one log line that carries a secret, by design: the
// token exists nowhere else. It bypasses the level filter, so a daemon
// configured to log warnings only still shows it.
func LogFirstRunKey(ctx context.Context, logger *slog.Logger, token, pageURL string) {
	r := slog.NewRecord(time.Now(), slog.LevelInfo,
		"first run: no API key in the store, created one; admin key: "+token+" page: "+pageURL+
			" (shown once; only its hash is kept)", 0)
	logger.Handler().Handle(ctx, r)
}

// PageURL is the admin page's address for a bound listener: an
// unspecified host (":8080", "0.0.0.0", "::") becomes localhost, since
// the page is then reachable on every address of the device.
func PageURL(addr string, tls bool) string {
	scheme := "http"
	if tls {
		scheme = "https"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return scheme + "://" + addr + "/"
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/"
}
