package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/facedhq/faced/face"
)

// fetcher downloads photos given as URLs from allow-listed hosts only.
type fetcher struct {
	allow    []string
	maxBytes int64
	timeout  time.Duration
	client   *http.Client
}

// newFetcher returns nil (fetching off) unless hosts are allow-listed.
func newFetcher(cfg FetchConfig) *fetcher {
	if len(cfg.AllowHosts) == 0 {
		return nil
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 10 << 20
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	f := &fetcher{allow: cfg.AllowHosts, maxBytes: cfg.MaxBytes, timeout: cfg.Timeout}
	f.client = &http.Client{
		Timeout: cfg.Timeout,
		// A redirect is a new request: it must stay on allowed hosts too.
		// It is refused here, before any connection to the new host.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("too many redirects")
			}
			if !f.allowed(req.URL) {
				return &redirectError{host: req.URL.Host}
			}
			return nil
		},
	}
	return f
}

// redirectError is CheckRedirect's refusal of a host off the allow-list.
type redirectError struct{ host string }

func (e *redirectError) Error() string {
	return fmt.Sprintf("redirect to %s is not allowed", e.host)
}

// allowed matches the URL's host, with or without its port, against the
// allow-list.
func (f *fetcher) allowed(u *url.URL) bool {
	return slices.Contains(f.allow, u.Host) || slices.Contains(f.allow, u.Hostname())
}

// fetchBudget is what one request may still download: MaxBytes and
// Timeout are shared by every photo URL of the request, so a request
// naming many URLs costs no more than one naming one big photo. The clock
// starts at the first fetch.
type fetchBudget struct {
	mu       sync.Mutex
	started  bool
	deadline time.Time
	left     int64
}

// FetchEnabled reports whether photo URLs are fetched at all (some host
// is allow-listed), so a dialect can refuse a URL in its own words first.
func (s *Server) FetchEnabled() bool { return s.fetcher != nil }

// newBudget returns a fresh budget (nil when fetching is off).
func (f *fetcher) newBudget() *fetchBudget {
	if f == nil {
		return nil
	}
	return &fetchBudget{}
}

// start returns the budget's deadline and the bytes left, starting its
// clock on first use.
func (b *fetchBudget) start(f *fetcher) (time.Time, int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.started {
		b.started, b.deadline, b.left = true, time.Now().Add(f.timeout), f.maxBytes
	}
	return b.deadline, b.left
}

func (b *fetchBudget) spend(n int64) {
	b.mu.Lock()
	b.left -= n
	b.mu.Unlock()
}

// budgetKey carries a request's *fetchBudget in its context, for the
// dialects' FetchPhoto calls (Server.Handler puts one in every request).
type budgetKey struct{}

// budgetFor is the fetch budget of ctx's request, or a fresh one outside
// a request.
func (f *fetcher) budgetFor(ctx context.Context) *fetchBudget {
	if b, ok := ctx.Value(budgetKey{}).(*fetchBudget); ok {
		return b
	}
	return f.newBudget()
}

// FetchPhoto downloads a photo from an allow-listed host, for dialects
// whose documents send photo URLs; it fails when fetching is off or the
// host is not allowed. The photos of one request (one ctx from the
// request) share one byte and time budget.
func (s *Server) FetchPhoto(ctx context.Context, url string) ([]byte, error) {
	return s.fetcher.fetch(ctx, url, s.fetcher.budgetFor(ctx))
}

// fetch downloads one photo within budget.
func (f *fetcher) fetch(ctx context.Context, raw string, budget *fetchBudget) ([]byte, error) {
	if f == nil {
		return nil, badRequest("bad_photo", "photo URLs are not fetched (disabled on this device)")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, badRequest("bad_photo", "malformed photo URL")
	}
	if !f.allowed(u) {
		return nil, badRequest("url_not_allowed", fmt.Sprintf("photo host %q is not on this device's allow-list", u.Host))
	}
	deadline, left := budget.start(f)
	if left <= 0 {
		return nil, fmt.Errorf("%w: the photos fetched for one request exceed %d bytes", face.ErrTooLarge, f.maxBytes)
	}
	if !time.Now().Before(deadline) {
		return nil, badRequest("fetch_failed", fmt.Sprintf("fetching the photos of one request took longer than %v", f.timeout))
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, badRequest("bad_photo", err.Error())
	}
	resp, err := f.client.Do(req)
	if err != nil {
		var redirect *redirectError
		if errors.As(err, &redirect) {
			return nil, badRequest("url_not_allowed", fmt.Sprintf("the photo URL redirects to host %q, which is not on this device's allow-list", redirect.host))
		}
		return nil, f.failed(deadline, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, badRequest("fetch_failed", "fetching the photo failed: "+resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, left+1))
	budget.spend(int64(len(data)))
	if err != nil {
		return nil, f.failed(deadline, err)
	}
	if int64(len(data)) > left {
		if left == f.maxBytes {
			return nil, fmt.Errorf("%w: the photo at the URL exceeds %d bytes", face.ErrTooLarge, f.maxBytes)
		}
		return nil, fmt.Errorf("%w: the photos fetched for one request exceed %d bytes", face.ErrTooLarge, f.maxBytes)
	}
	return data, nil
}

// failed is a fetch that did not complete: past the budget's deadline, or
// another error.
func (f *fetcher) failed(deadline time.Time, err error) error {
	if !time.Now().Before(deadline) {
		return badRequest("fetch_failed", fmt.Sprintf("fetching the photos of one request took longer than %v", f.timeout))
	}
	return badRequest("fetch_failed", "fetching the photo failed: "+err.Error())
}
