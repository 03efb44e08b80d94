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

// cmdKeys manages the API keys in the store: add, list, revoke. It opens
// the store directly, so the daemon must be stopped (for now).
func cmdKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return dispatch(ctx, "keys", map[string]command{
		"add":    cmdKeysAdd,
		"list":   cmdKeysList,
		"revoke": cmdKeysRevoke,
		"hash":   cmdKeysHash,
	}, args, stdout, stderr)
}

const keysHashUsage = `usage: printf %s "$SECRET" | faced keys hash
prints the secret_sha256 of a key in the configuration file
`

// stdin is what keys hash reads (tests replace it).
var stdin io.Reader = os.Stdin

// cmdKeysHash prints the secret_sha256 of a key provisioned from the
// configuration file (daemon.KeyConfig): the hex SHA-256 of the secret
// read from stdin, so the secret stays out of argv and shell history. A
// trailing newline is ignored, as auth.Parse ignores surrounding space.
func cmdKeysHash(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("keys hash", stderr)
	fs.Usage = func() {
		io.WriteString(stderr, keysHashUsage)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("keys hash: unexpected argument %q (the secret is read from stdin)", fs.Arg(0))
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

// openKeyStore opens the store of dataDir for the keys verbs, turning
// ErrLocked into an error that says what to do.
func openKeyStore(dataDir string) (*store.DB, error) {
	path := daemon.DBPath(dataDir)
	db, err := store.Open(path, store.Options{})
	if errors.Is(err, store.ErrLocked) {
		return nil, fmt.Errorf("the faced daemon is running and holds %s: stop it to manage keys "+
			"(keys changes need the daemon stopped for now): %w", path, err)
	}
	return db, err
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
	fs := newFlagSet("keys add", stderr)
	dataDir := fs.String("data-dir", "./data", "state directory")
	name := fs.String("name", "", "what the key is for (required)")
	scopesFlag := fs.String("scopes", "", "comma-separated scopes: read, write, admin (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("keys add: unexpected argument %q", fs.Arg(0))
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
	db, err := openKeyStore(*dataDir)
	if err != nil {
		return fmt.Errorf("keys add: %w", err)
	}
	defer db.Close()
	k, err := service.CreateAPIKey(ctx, db, strings.TrimSpace(*name), scopes, time.Now())
	if err != nil {
		return fmt.Errorf("keys add: %w", err)
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("keys add: %w", err)
	}
	// The token alone on stdout, so `TOKEN=$(faced keys add ...)` works.
	fmt.Fprintln(stdout, k.Token)
	fmt.Fprintf(stderr, "keys add: created key %s (%s, scopes %s); the token above will not be shown again\n",
		k.ID, strings.TrimSpace(*name), strings.Join(scopes, ","))
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
	fs := newFlagSet("keys list", stderr)
	dataDir := fs.String("data-dir", "./data", "state directory")
	asJSON := fs.Bool("json", false, "print a JSON array")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return fmt.Errorf("keys list: unexpected argument %q", fs.Arg(0))
	}
	infos := []keyInfo{}
	ok, err := storeExists(*dataDir)
	if err != nil {
		return fmt.Errorf("keys list: %w", err)
	}
	if ok {
		db, err := openKeyStore(*dataDir)
		if err != nil {
			return fmt.Errorf("keys list: %w", err)
		}
		keys, err := db.ListAPIKeys(ctx)
		db.Close()
		if err != nil {
			return fmt.Errorf("keys list: %w", err)
		}
		for _, k := range keys {
			info := keyInfo{ID: k.ID, Name: k.Name, Scopes: k.Scopes, Created: k.CreatedAt.UTC()}
			if info.Scopes == nil {
				info.Scopes = []string{}
			}
			if k.RevokedAt != nil {
				t := k.RevokedAt.UTC()
				info.Revoked = &t
			}
			infos = append(infos, info)
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
	fs := newFlagSet("keys revoke", stderr)
	dataDir := fs.String("data-dir", "./data", "state directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Accept flags after the ID too: faced keys revoke ID --data-dir DIR.
	var ids []string
	for fs.NArg() > 0 {
		ids = append(ids, fs.Arg(0))
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return err
		}
	}
	if len(ids) != 1 {
		return errors.New("keys revoke: want exactly one key ID")
	}
	id := ids[0]
	ok, err := storeExists(*dataDir)
	if err != nil {
		return fmt.Errorf("keys revoke: %w", err)
	}
	if !ok {
		return fmt.Errorf("keys revoke: key %q: %w (no store at %s)", id, store.ErrNotFound, daemon.DBPath(*dataDir))
	}
	db, err := openKeyStore(*dataDir)
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
