package webui

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
	"sync"
	"time"
)

// session is one logged-in browser. It lives in server memory only: the
// cookie carries a random id, never the key. The key's token is kept here
// so that every request is authenticated again through the service, with
// the scope it needs: a revoked key ends its sessions at their next
// request, and scopes apply exactly as on the API.
type session struct {
	id, csrf       string
	token          string
	keyID, keyName string
	scopes         []string
	created, seen  time.Time
	flash          string
}

// sessions is the table of live sessions, bounded: past max the oldest
// is dropped, so a flood of logins cannot grow memory without end.
type sessions struct {
	mu             sync.Mutex
	m              map[string]*session
	idle, absolute time.Duration
	max            int
	now            func() time.Time
}

func newSessions(idle, absolute time.Duration, max int, now func() time.Time) *sessions {
	return &sessions{m: map[string]*session{}, idle: idle, absolute: absolute, max: max, now: now}
}

// randomID is 32 random bytes, base64url: unguessable as a session id or
// a CSRF token.
func randomID() string {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go ≥ 1.24)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// create starts a session for a validated key.
func (ss *sessions) create(token, keyID, keyName string, scopes []string) *session {
	now := ss.now()
	s := &session{id: randomID(), csrf: randomID(), token: token, keyID: keyID, keyName: keyName,
		scopes: scopes, created: now, seen: now}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.expireLocked(now)
	for len(ss.m) >= ss.max {
		var oldest *session
		for _, o := range ss.m {
			if oldest == nil || o.seen.Before(oldest.seen) {
				oldest = o
			}
		}
		delete(ss.m, oldest.id)
	}
	ss.m[s.id] = s
	return s
}

// get returns the live session of id and marks it seen, or nil. A session
// idle for longer than idle, or older than absolute, is gone.
func (ss *sessions) get(id string) *session {
	now := ss.now()
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[id]
	if !ok {
		return nil
	}
	if ss.expired(s, now) {
		delete(ss.m, id)
		return nil
	}
	s.seen = now
	return s
}

func (ss *sessions) expired(s *session, now time.Time) bool {
	return now.Sub(s.seen) >= ss.idle || now.Sub(s.created) >= ss.absolute
}

func (ss *sessions) expireLocked(now time.Time) {
	for id, s := range ss.m {
		if ss.expired(s, now) {
			delete(ss.m, id)
		}
	}
}

// end forgets a session (logout).
func (ss *sessions) end(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, id)
}

// takeFlash returns and clears the message saved for the next page.
func (ss *sessions) takeFlash(s *session) string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	f := s.flash
	s.flash = ""
	return f
}

func (ss *sessions) setFlash(s *session, msg string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s.flash = msg
}

// validCSRF compares a form's token with the session's in constant time.
func validCSRF(s *session, token string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(s.csrf), []byte(token)) == 1
}

// limiter allows n login attempts per window per client address (the
// peer's IP: forwarded headers are not trusted, as in the API's logs).
type limiter struct {
	mu     sync.Mutex
	n      int
	window time.Duration
	hits   map[string][]time.Time
	now    func() time.Time
}

func newLimiter(n int, window time.Duration, now func() time.Time) *limiter {
	return &limiter{n: n, window: window, hits: map[string][]time.Time{}, now: now}
}

// allow records an attempt by r's client and reports whether it is within
// the limit.
func (l *limiter) allow(r *http.Request) bool {
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.hits) > 10000 { // forget old clients rather than grow
		for k, ts := range l.hits {
			if now.Sub(ts[len(ts)-1]) >= l.window {
				delete(l.hits, k)
			}
		}
	}
	var recent []time.Time
	for _, t := range l.hits[ip] {
		if now.Sub(t) < l.window {
			recent = append(recent, t)
		}
	}
	if len(recent) >= l.n {
		l.hits[ip] = recent
		return false
	}
	l.hits[ip] = append(recent, now)
	return true
}
