package store

import "errors"

// Sentinel errors. Every error the store returns wraps at most one of them,
// with the operation and the offending name or id in front, so callers
// branch with errors.Is and still log something a person can act on.
var (
	// ErrNotFound: the person, face, gallery, event, key or stored image
	// does not exist.
	ErrNotFound = errors.New("not found")
	// ErrDuplicate: an id, external id, gallery name or key hash is taken.
	ErrDuplicate = errors.New("already exists")
	// ErrInvalid: the argument breaks a rule (name syntax, empty embedding,
	// bad cursor, an update that touches an immutable field...).
	ErrInvalid = errors.New("invalid")
	// ErrSchema: the file is not a faced store, or was written by a newer
	// faced whose schema this build does not know. The file is left as is.
	ErrSchema = errors.New("unsupported schema")
	// ErrCorrupt: a record or index entry cannot be decoded or points at
	// something that is missing. It means a bug or a damaged disk, never bad
	// input.
	ErrCorrupt = errors.New("corrupt store")
	// ErrLocked: another process (normally the running daemon) holds the
	// database file.
	ErrLocked = errors.New("database is locked by another process")
	// ErrNoSpace: a write failed because the file system is full or the
	// owner's quota is used up (ENOSPC, EDQUOT). Nothing was written; the
	// same write succeeds once space is freed.
	ErrNoSpace = errors.New("no space left for the store")
)
