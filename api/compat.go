package api

import (
	"encoding/base64"
	"errors"
	"strings"
)

// Helpers the vendor dialects share: each keeps its own error messages
// but parses photos and bodies the same way.

// Errors of DecodeBase64Photo; dialects map them to their own messages.
var (
	ErrBadBase64     = errors.New("not valid base64")
	ErrPhotoTooLarge = errors.New("photo too large")
)

// DecodeBase64Photo decodes a photo sent as base64: standard or URL
// alphabet, padded or not, wrapped across lines, optionally a data: URI.
// With max > 0, a photo that would decode to more than max bytes is
// ErrPhotoTooLarge, checked before decoding; an empty or malformed one is
// ErrBadBase64.
func DecodeBase64Photo(s string, max int) ([]byte, error) {
	s = strings.TrimSpace(s)
	if rest, ok := strings.CutPrefix(s, "data:"); ok {
		_, data, found := strings.Cut(rest, ",")
		if !found {
			return nil, ErrBadBase64
		}
		s = data
	}
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, s)
	s = strings.TrimRight(s, "=")
	if max > 0 && base64.RawStdEncoding.DecodedLen(len(s)) > max {
		return nil, ErrPhotoTooLarge
	}
	enc := base64.RawStdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.RawURLEncoding
	}
	b, err := enc.DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil, ErrBadBase64
	}
	return b, nil
}

// StripTrailingCommas drops each comma, outside strings, that follows a
// value and precedes (up to whitespace) a closing } or ]. Valid JSON has
// no such comma, so it is returned unchanged. Vendor documents show
// sample bodies with trailing commas, and clients copy them.
func StripTrailingCommas(b []byte) []byte {
	out := make([]byte, 0, len(b))
	inString, escaped := false, false
	var last byte // last non-whitespace byte written outside strings
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			out = append(out, c)
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
				last = '"'
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case ',':
			j := i + 1
			for j < len(b) && isSpace(b[j]) {
				j++
			}
			if j < len(b) && (b[j] == '}' || b[j] == ']') && last != 0 && !strings.ContainsRune("{[,:", rune(last)) {
				continue // drop it
			}
		}
		out = append(out, c)
		if !isSpace(c) && c != '"' {
			last = c
		}
	}
	return out
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
