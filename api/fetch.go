package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/facedhq/faced/face"
)

// fetcher downloads photos given as URLs from allow-listed hosts only.
type fetcher struct {
	allow    []string
	maxBytes int64
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
	f := &fetcher{allow: cfg.AllowHosts, maxBytes: cfg.MaxBytes}
	f.client = &http.Client{
		Timeout: cfg.Timeout,
		// A redirect is a new request: it must stay on allowed hosts too.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("too many redirects")
			}
			if !f.allowed(req.URL) {
				return fmt.Errorf("redirect to %s is not allowed", req.URL.Host)
			}
			return nil
		},
	}
	return f
}

// allowed matches the URL's host, with or without its port, against the
// allow-list.
func (f *fetcher) allowed(u *url.URL) bool {
	return slices.Contains(f.allow, u.Host) || slices.Contains(f.allow, u.Hostname())
}

// FetchPhoto downloads a photo from an allow-listed host, for dialects
// whose documents send photo URLs; it fails when fetching is off or the
// host is not allowed.
func (s *Server) FetchPhoto(ctx context.Context, url string) ([]byte, error) {
	return s.fetcher.fetch(ctx, url)
}

// FetchEnabled reports whether photo URLs are fetched at all (some host
// is allow-listed), so a dialect can refuse a URL in its own words first.
func (s *Server) FetchEnabled() bool { return s.fetcher != nil }

// fetch downloads one photo.
func (f *fetcher) fetch(ctx context.Context, raw string) ([]byte, error) {
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
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, badRequest("bad_photo", err.Error())
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, badRequest("fetch_failed", "fetching the photo failed: "+err.Error())
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, badRequest("fetch_failed", "fetching the photo failed: "+resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, f.maxBytes+1))
	if err != nil {
		return nil, badRequest("fetch_failed", "fetching the photo failed: "+err.Error())
	}
	if int64(len(data)) > f.maxBytes {
		return nil, fmt.Errorf("%w: the photo at the URL exceeds %d bytes", face.ErrTooLarge, f.maxBytes)
	}
	return data, nil
}
