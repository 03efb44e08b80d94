package store

import (
	"bytes"
	"encoding/base64"
	"fmt"

	"go.etcd.io/bbolt"
)

// Page limits for every list.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Page is one page of a list. Next is the cursor for the following page,
// "" when there is none.
type Page[T any] struct {
	Items []T
	Next  string
}

// ListOptions selects a page. Gallery and PersonID filter where the list
// supports them; a filter a list does not support is ErrInvalid rather
// than silently ignored.
type ListOptions struct {
	Cursor string
	// Limit is the page size: 0 means DefaultLimit, more than MaxLimit
	// means MaxLimit.
	Limit    int
	Gallery  string
	PersonID string
}

func pageLimit(n int) (int, error) {
	switch {
	case n < 0:
		return 0, fmt.Errorf("%w: limit %d", ErrInvalid, n)
	case n == 0:
		return DefaultLimit, nil
	case n > MaxLimit:
		return MaxLimit, nil
	}
	return n, nil
}

// Cursor kinds: the first byte of a decoded cursor, so a cursor from one
// list handed to another is refused instead of seeking somewhere odd.
const (
	cursorPersons   = 'p'
	cursorFaces     = 'f'
	cursorGalleries = 'g'
	cursorEvents    = 'e'
)

// A cursor is the kind byte plus the identity of the last item returned
// (a person id, a face id, a gallery name, an event's time+id key), in
// unpadded URL-safe base64. It names a position, not an offset, so rows
// inserted or deleted elsewhere never shift what the next page returns.
func encodeCursor(kind byte, last []byte) string {
	return base64.RawURLEncoding.EncodeToString(append([]byte{kind}, last...))
}

func decodeCursor(kind byte, s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 2 || b[0] != kind {
		return nil, fmt.Errorf("%w: cursor %q", ErrInvalid, s)
	}
	return b[1:], nil
}

// scanPage collects up to limit items from the keys under prefix that sort
// after prefix+after, ascending. visit decodes one entry and may skip it
// (ok false). Next is set only when one more matching item exists, so the
// last page never comes back empty.
func scanPage[T any](c *bbolt.Cursor, prefix, after []byte, kind byte, limit int,
	visit func(k, v []byte) (item T, ok bool, err error)) (Page[T], error) {
	var (
		p    Page[T]
		k, v []byte
		last []byte
	)
	if after == nil {
		k, v = c.Seek(prefix)
	} else {
		seek := append(append([]byte(nil), prefix...), after...)
		if k, v = c.Seek(seek); bytes.Equal(k, seek) {
			k, v = c.Next()
		}
	}
	for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		item, ok, err := visit(k, v)
		if err != nil {
			return Page[T]{}, err
		}
		if !ok {
			continue
		}
		if len(p.Items) == limit {
			p.Next = encodeCursor(kind, last)
			break
		}
		p.Items = append(p.Items, item)
		last = append(last[:0], k[len(prefix):]...)
	}
	return p, nil
}
