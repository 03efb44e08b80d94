package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/facedhq/faced/auth"
	"github.com/facedhq/faced/daemon"
	"github.com/facedhq/faced/service"
	"github.com/facedhq/faced/store"
)

// cmdKeys manages the API keys in the store: add, list, revoke. With the
// daemon stopped it opens the store itself; while the daemon runs (and
// holds the store's lock) it asks the daemon over its control socket, and
// a revocation takes effect at the daemon's next request.
func cmdKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return dispatch(ctx, "keys", map[string]command{
		"add":    cmdKeysAdd,
		"list":   cmdKeysList,
		"revoke": cmdKeysRevoke,
		"hash":   cmdKeysHash,
	}, args, stdout, stderr)
}

const keysHashUsage = `usage: faced keys hash < SECRET
reads the secret from stdin (printf %s "$SECRET" | faced keys hash) and
prints the secret_sha256 of a key in the configuration file
`

// stdin is what keys hash reads (tests replace it).
var stdin io.Reader = os.Stdin

// cmdKeysHash prints the secret_sha256 of a key provisioned from the
// configuration file (daemon.KeyConfig): the hex SHA-256 of the secret
// read from stdin, so the secret stays out of argv and shell history. A
// trailing newline is ignored, as auth.Parse ignores surrounding space.
func cmdKeysHash(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keys hash", "", stderr)
	fs.stray = "the secret is read from stdin"
	fs.Usage = func() {
		io.WriteString(stderr, keysHashUsage)
	}
	if err := fs.parse(args); err != nil {
		return err
	}
	b, err := io.ReadAll(io.LimitReader(stdin, 4096))
	if err != nil {
		return fmt.Errorf("keys hash: %w", err)
	}
	secret := strings.TrimSpace(string(b))
	switch {
	case secret == "":
		return errors.New("keys hash: no secret on stdin")
	case strings.ContainsAny(secret, " \t\r\n"):
		return errors.New("keys hash: the secret contains white space (give the secret alone, not the whole token or several lines)")
	case len(secret) > auth.MaxSecretLen:
		return fmt.Errorf("keys hash: the secret is %d bytes, at most %d", len(secret), auth.MaxSecretLen)
	case len(secret) < 16:
		return errors.New("keys hash: the secret is too short: use at least 16 random characters, e.g. openssl rand -base64 32 | tr '+/' '-_' | tr -d '='")
	}
	fmt.Fprintln(stdout, hex.EncodeToString(auth.HashSecret(secret)))
	return nil
}

// openKeyStore opens the store of dataDir for the keys verbs. When another
// process holds it (errors.Is(err, store.ErrLocked)), the caller asks the
// daemon instead (viaDaemon).
func openKeyStore(dataDir string) (*store.DB, error) {
	return store.Open(daemon.DBPath(dataDir), store.Options{})
}

// viaDaemon runs a keys verb through the running daemon's control socket.
// A store locked by something that does not answer there (not a faced
// daemon, or one still starting) is an error that says both.
func viaDaemon(dataDir string, locked error, call func() error) error {
	err := call()
	if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrInvalid) {
		return err
	}
	return fmt.Errorf("%w; %w (is the daemon still starting? retry, or stop whatever holds %s)", locked, err, daemon.DBPath(dataDir))
}

// storeExists reports whether dataDir holds a store, so that list and
// revoke do not create one as a side effect.
func storeExists(dataDir string) (bool, error) {
	_, err := os.Stat(daemon.DBPath(dataDir))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

func cmdKeysAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keys add", "", stderr)
	dataDir := fs.String("data-dir", "./data", "state directory")
	name := fs.String("name", "", "what the key is for (required)")
	scopesFlag := fs.String("scopes", "", "comma-separated scopes: read, write, admin (required)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if strings.TrimSpace(*name) == "" {
		return errors.New("keys add: --name is required")
	}
	scopes, err := auth.ParseScopes(*scopesFlag)
	if err != nil {
		return fmt.Errorf("keys add: --scopes: %w", err)
	}
	if err := os.MkdirAll(*dataDir, 0o750); err != nil {
		return fmt.Errorf("keys add: %w", err)
	}
	var id, token, how string
	db, err := openKeyStore(*dataDir)
	switch {
	case errors.Is(err, store.ErrLocked):
		err = viaDaemon(*dataDir, err, func() error {
			info, err := daemon.AddKeyViaDaemon(ctx, *dataDir, strings.TrimSpace(*name), scopes)
			id, token, how = info.ID, info.Token, " by the running daemon"
			return err
		})
		if err != nil {
			return fmt.Errorf("keys add: %w", err)
		}
	case err != nil:
		return fmt.Errorf("keys add: %w", err)
	default:
		defer db.Close()
		k, err := service.CreateAPIKey(ctx, db, strings.TrimSpace(*name), scopes, time.Now())
		if err != nil {
			return fmt.Errorf("keys add: %w", err)
		}
		if err := db.Close(); err != nil {
			return fmt.Errorf("keys add: %w", err)
		}
		id, token = k.ID, k.Token
	}
	// The token alone on stdout, so `TOKEN=$(faced keys add ...)` works.
	fmt.Fprintln(stdout, token)
	fmt.Fprintf(stderr, "keys add: created key %s (%s, scopes %s)%s; the token above will not be shown again\n",
		id, strings.TrimSpace(*name), strings.Join(scopes, ","), how)
	return nil
}

// keyInfo is what list shows of a key: never its hash.
type keyInfo struct {
	ID      string     `json:"id"`
	Name    string     `json:"name"`
	Scopes  []string   `json:"scopes"`
	Created time.Time  `json:"created"`
	Revoked *time.Time `json:"revoked"`
}

func cmdKeysList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keys list", "", stderr)
	dataDir := fs.String("data-dir", "./data", "state directory")
	asJSON := fs.Bool("json", false, "print a JSON array")
	if err := fs.parse(args); err != nil {
		return err
	}
	infos := []keyInfo{}
	ok, err := storeExists(*dataDir)
	if err != nil {
		return fmt.Errorf("keys list: %w", err)
	}
	if ok {
		var keys []daemon.KeyInfo
		db, err := openKeyStore(*dataDir)
		switch {
		case errors.Is(err, store.ErrLocked):
			err = viaDaemon(*dataDir, err, func() (err error) {
				keys, err = daemon.ListKeysFromDaemon(ctx, *dataDir)
				return err
			})
		case err == nil:
			var stored []store.APIKey
			stored, err = db.ListAPIKeys(ctx)
			db.Close()
			for _, k := range stored {
				keys = append(keys, daemon.KeyInfoOf(k))
			}
		}
		if err != nil {
			return fmt.Errorf("keys list: %w", err)
		}
		for _, k := range keys {
			infos = append(infos, keyInfo{ID: k.ID, Name: k.Name, Scopes: k.Scopes, Created: k.CreatedAt, Revoked: k.RevokedAt})
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(infos)
	}
	if len(infos) == 0 {
		fmt.Fprintln(stderr, "keys list: no keys")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tCREATED\tREVOKED")
	for _, k := range infos {
		revoked := "-"
		if k.Revoked != nil {
			revoked = k.Revoked.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, strings.Join(k.Scopes, ","),
			k.Created.Format(time.RFC3339), revoked)
	}
	return tw.Flush()
}

func cmdKeysRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keys revoke", "ID", stderr)
	dataDir := fs.String("data-dir", "./data", "state directory")
	if err := fs.parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("keys revoke: want exactly one key ID")
	}
	id := fs.Arg(0)
	ok, err := storeExists(*dataDir)
	if err != nil {
		return fmt.Errorf("keys revoke: %w", err)
	}
	if !ok {
		return fmt.Errorf("keys revoke: key %q: %w (no store at %s)", id, store.ErrNotFound, daemon.DBPath(*dataDir))
	}
	db, err := openKeyStore(*dataDir)
	if errors.Is(err, store.ErrLocked) {
		var k daemon.KeyInfo
		err = viaDaemon(*dataDir, err, func() (err error) {
			k, err = daemon.RevokeKeyViaDaemon(ctx, *dataDir, id)
			return err
		})
		if err != nil {
			return fmt.Errorf("keys revoke: %w", err)
		}
		if k.AlreadyRevoked && k.RevokedAt != nil {
			fmt.Fprintf(stdout, "keys revoke: key %s (%s) was already revoked at %s\n", k.ID, k.Name, k.RevokedAt.Format(time.RFC3339))
			return nil
		}
		fmt.Fprintf(stdout, "keys revoke: key %s (%s) revoked; the running daemon refuses it from now on\n", k.ID, k.Name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("keys revoke: %w", err)
	}
	defer db.Close()
	k, err := db.GetAPIKey(ctx, id)
	if err != nil {
		return fmt.Errorf("keys revoke: %w", err)
	}
	if k.RevokedAt != nil {
		fmt.Fprintf(stdout, "keys revoke: key %s (%s) was already revoked at %s\n", k.ID, k.Name, k.RevokedAt.UTC().Format(time.RFC3339))
		return nil
	}
	if err := db.RevokeAPIKey(ctx, id, time.Now()); err != nil {
		return fmt.Errorf("keys revoke: %w", err)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("keys revoke: %w", err)
	}
	fmt.Fprintf(stdout, "keys revoke: key %s (%s) revoked\n", k.ID, k.Name)
	return nil
}
