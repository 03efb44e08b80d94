package store

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits on caller-supplied strings. They keep records small and, for the
// strings that become index-key prefixes, guarantee the NUL separator in
// indexKey is unambiguous.
const (
	maxIDLen   = 128
	maxTextLen = 512
	// maxEmbedderLen fits three fused embedders with 48-character names
	// (the longest a declared model may have), "+flip" and the 18 hex
	// digits of their digests: 170 bytes. dlib-resnet-128 fused with the
	// default pair alone is 70.
	maxEmbedderLen  = 192
	maxEmbeddingDim = 4096
	// MaxImageBytes bounds a stored face image or event snapshot. A JPEG
	// of a face or a camera frame is far smaller; anything bigger is a
	// mistake that would bloat every backup.
	MaxImageBytes = 8 << 20
)

// checkID accepts 1..maxIDLen bytes of UTF-8 without control or format
// characters: ids come from customers' systems, so we allow any visible
// text, but they become key prefixes and must not contain NUL.
func checkID(what, s string) error {
	if s == "" {
		return fmt.Errorf("%w: %s is empty", ErrInvalid, what)
	}
	return checkIDText(what, s, maxIDLen)
}

// checkIDText is checkID for ids that may be empty (a camera id, an
// embedder id) or have their own limit. Ids refuse every Unicode format
// character (category Cf: bidi overrides and isolates, zero-width spaces
// and joiners, the byte-order mark, soft hyphens...): they are invisible,
// so "alice" and "al\u200bice" would be two persons, or two cameras, that
// no screen or log can tell apart.
func checkIDText(what, s string, max int) error {
	if err := checkText(what, s, max); err != nil {
		return err
	}
	if i := strings.IndexFunc(s, isFormat); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		return fmt.Errorf("%w: %s %q contains an invisible Unicode format character (%U at byte %d); ids must be visible text",
			ErrInvalid, what, s, r, i)
	}
	return nil
}

// checkText accepts free text (names, e-mail addresses, phone numbers):
// valid UTF-8 within max bytes, without control characters, and without
// the format characters that only disguise text: everything in category
// Cf except the zero-width joiner and non-joiner (U+200D, U+200C), which
// Persian, Indic and emoji spellings need. So bidi overrides ("Bob
// \u202egnp.exe" shows as "Bob exe.png"), zero-width spaces and
// byte-order marks are refused in names too.
func checkText(what, s string, max int) error {
	if len(s) > max {
		return fmt.Errorf("%w: %s is %d bytes, limit %d", ErrInvalid, what, len(s), max)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalid, what)
	}
	if strings.ContainsFunc(s, unicode.IsControl) {
		return fmt.Errorf("%w: %s %q contains a control character", ErrInvalid, what, s)
	}
	if i := strings.IndexFunc(s, isDisguise); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		return fmt.Errorf("%w: %s %q contains an invisible Unicode format character (%U at byte %d)", ErrInvalid, what, s, r, i)
	}
	return nil
}

// isFormat reports Unicode category Cf.
func isFormat(r rune) bool { return unicode.Is(unicode.Cf, r) }

// isDisguise is a format character that text has no need for: Cf
// without the joiners.
func isDisguise(r rune) bool { return r != '\u200c' && r != '\u200d' && isFormat(r) }

// ValidGalleryName reports whether name matches [a-zA-Z0-9_-]{1,48}, the
// rule every vendor API we emulate can represent.
func ValidGalleryName(name string) bool {
	if len(name) < 1 || len(name) > 48 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

func checkGalleryName(name string) error {
	if !ValidGalleryName(name) {
		return fmt.Errorf("%w: gallery name %q must match [a-zA-Z0-9_-]{1,48}", ErrInvalid, name)
	}
	return nil
}

// finite rejects NaN and ±Inf, which would poison distance computations in
// the index long after the write that let them in.
func finite(fs ...float32) bool {
	for _, f := range fs {
		if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
			return false
		}
	}
	return true
}

// normPhotoHash lower-cases a sha256 hex digest; it is stored as 32 raw
// bytes, so any other shape is refused rather than silently mangled.
func normPhotoHash(h string) (string, error) {
	if h == "" {
		return "", nil
	}
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 32 {
		return "", fmt.Errorf("%w: photo hash %q is not a sha256 hex digest", ErrInvalid, h)
	}
	return hex.EncodeToString(b), nil
}

// newID returns 16 random bytes in hex: unguessable, so person ids can be
// shown to clients without leaking enrolment order or counts.
func newID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails since Go 1.24
	return hex.EncodeToString(b[:])
}
