package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync/atomic"
)

// reloadable are the settings SIGHUP applies to the running daemon; every
// other setting (listen, data_dir, vision, api, fetch, any section added
// later...) needs a restart, and a reload that changes one logs it as
// ignored.
var reloadable = map[string]bool{
	"log_level":         true,
	"service.threshold": true,
	"tls.cert_file":     true,
	"tls.key_file":      true,
	"keys":              true,
}

// Live holds what a reload changes under the running server: the log
// level its logger reads and the certificate its TLS handshakes present.
type Live struct {
	Level slog.LevelVar
	cert  atomic.Pointer[tls.Certificate]
}

// SetCertificate makes later handshakes present cert.
func (l *Live) SetCertificate(cert *tls.Certificate) { l.cert.Store(cert) }

// GetCertificate is tls.Config.GetCertificate: the current certificate.
func (l *Live) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c := l.cert.Load()
	if c == nil {
		return nil, errors.New("tls: no certificate loaded")
	}
	return c, nil
}

// TLSConfig serves HTTPS (TLS 1.2 or later) with the live certificate.
func (l *Live) TLSConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: l.GetCertificate}
}

// Reload applies next, a validated configuration (Loader.Load), to the
// running daemon and returns the configuration now in force: running with
// the reloadable settings of next. It re-provisions the keys, then sets
// the service's default threshold, the log level and the certificate;
// changes to other settings are logged as ignored until restart. Nothing
// changes when the certificate does not load; a store error while
// provisioning keys leaves the earlier keys provisioned and the rest as
// they were. Keep calls serial.
func (d *Daemon) Reload(ctx context.Context, running, next Config, live *Live, logger *slog.Logger) (Config, error) {
	applied := running
	var ignored []string
	for _, s := range settings() {
		old := reflect.ValueOf(&applied).Elem().FieldByIndex(s.Index)
		neu := reflect.ValueOf(next).FieldByIndex(s.Index)
		if reflect.DeepEqual(old.Interface(), neu.Interface()) {
			continue
		}
		if reloadable[s.Path] {
			old.Set(neu)
		} else {
			ignored = append(ignored, s.Path)
		}
	}
	// Switching HTTPS on or off needs a new listener.
	if running.TLS.Enabled() != applied.TLS.Enabled() {
		applied.TLS = running.TLS
		ignored = append(ignored, "tls")
	}

	var cert *tls.Certificate
	if applied.TLS.Enabled() {
		var err error
		if cert, err = LoadCertificate(applied.TLS); err != nil {
			return running, err
		}
	}
	threshold, err := applied.threshold()
	if err != nil {
		return running, &FieldError{Field: "service.threshold", Msg: err.Error()}
	}
	if err := ProvisionKeys(ctx, d.Store, applied.Keys, logger); err != nil {
		return running, fmt.Errorf("reload: %w", err)
	}
	d.Service.SetThreshold(threshold)
	live.Level.Set(applied.SlogLevel())
	if cert != nil {
		live.SetCertificate(cert)
	}
	for _, path := range ignored {
		logger.Warn("setting changed; ignored until restart", "setting", path)
	}
	logger.Debug("settings in force", "log_level", applied.LogLevel, "threshold", applied.Service.Threshold,
		"keys", len(applied.Keys), "tls", applied.TLS.Enabled())
	return applied, nil
}
