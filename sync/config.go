package sync

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"
)

// Config connects a device to its fleet broker.
type Config struct {
	// URL of the broker: tcp://host:1883, or ssl://host:8883 (also tls://,
	// mqtts://) for TLS. Credentials in it (tcp://user:password@host:1883)
	// are used when Username and Password are empty; they are taken out of
	// the URL before it is kept, and every log line and error shows the
	// URL through RedactURL.
	URL string
	// DeviceID names the device in topics and its MQTT client id.
	DeviceID string
	// TopicPrefix is the first level(s) of every topic (default "faced").
	TopicPrefix string
	// Username and Password authenticate with the broker.
	Username, Password string
	// CAFile verifies the broker's certificate (default: the system's
	// roots); CertFile and KeyFile are the device's client certificate.
	CAFile, CertFile, KeyFile string
	// KeepAlive is the MQTT keep-alive; ConnectTimeout bounds one attempt.
	KeepAlive, ConnectTimeout time.Duration
	// MaxReconnectInterval caps the exponential backoff between attempts.
	MaxReconnectInterval time.Duration
	// StatusInterval refreshes the retained status (outbox depth,
	// revisions) while connected.
	StatusInterval time.Duration
	// Version is the daemon's version, reported in the status.
	Version string
}

func (c *Config) setDefaults() {
	c.moveCredentials()
	if c.TopicPrefix == "" {
		c.TopicPrefix = "faced"
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = 30 * time.Second
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.MaxReconnectInterval == 0 {
		c.MaxReconnectInterval = time.Minute
	}
	if c.StatusInterval == 0 {
		c.StatusInterval = time.Minute
	}
}

// Check validates the configuration without touching the network or the
// files.
func (c Config) Check() error {
	c.setDefaults()
	var errs []error
	if err := CheckURL(c.URL); err != nil {
		errs = append(errs, err)
	}
	if err := CheckTopicLevel(c.DeviceID); err != nil {
		errs = append(errs, fmt.Errorf("device id %w", err))
	}
	if err := CheckPrefix(c.TopicPrefix); err != nil {
		errs = append(errs, err)
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		errs = append(errs, errors.New("cert_file and key_file go together"))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"keepalive", c.KeepAlive}, {"connect_timeout", c.ConnectTimeout}, {"max_reconnect_interval", c.MaxReconnectInterval}, {"status_interval", c.StatusInterval}} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative", d.name))
		}
	}
	return errors.Join(errs...)
}

// moveCredentials takes user name and password out of the URL into
// Username and Password (unless those are set), so that the URL the
// syncer keeps, logs and hands to the client carries no secret.
func (c *Config) moveCredentials() {
	u, err := url.Parse(c.URL)
	if err != nil || u.User == nil {
		return
	}
	if c.Username == "" {
		c.Username = u.User.Username()
	}
	if p, ok := u.User.Password(); ok && c.Password == "" {
		c.Password = p
	}
	u.User = nil
	c.URL = u.String()
}

// URLHasCredentials reports whether a broker URL carries a user name or
// password.
func URLHasCredentials(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return strings.Contains(raw, "@")
	}
	return u.User != nil
}

// RedactURL is a broker URL fit for logs and errors: any user name and
// password become "***" (tcp://***@host:1883). A URL that does not parse
// loses everything up to its last "@", where credentials would be.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err == nil && u.User != nil {
		u.User = nil
		return strings.Replace(u.String(), "://", "://***@", 1)
	}
	// Unparsed, or parsed oddly ("user:pass@host:1883" reads as scheme
	// "user"): an "@" may still end credentials.
	i := strings.LastIndex(raw, "@")
	if i < 0 {
		return raw
	}
	if scheme, _, ok := strings.Cut(raw, "://"); ok && !strings.Contains(scheme, "@") {
		return scheme + "://***" + raw[i:]
	}
	return "***" + raw[i:]
}

// CheckURL accepts the broker URLs the client speaks. Its errors show the
// URL redacted: a broker URL may carry a password.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse's error quotes the whole URL, password included.
		return fmt.Errorf("broker url %q does not parse as a URL (percent-encode special characters of a user name or password, or use mqtt.username and mqtt.password)", RedactURL(raw))
	}
	switch u.Scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts":
	default:
		return fmt.Errorf("broker url %q: want tcp://host:port or ssl://host:port", RedactURL(raw))
	}
	if u.Hostname() == "" || u.Port() == "" {
		return fmt.Errorf("broker url %q: want host and port", RedactURL(raw))
	}
	return nil
}

func (c Config) usesTLS() bool {
	u, _ := url.Parse(c.URL)
	return u != nil && (u.Scheme == "ssl" || u.Scheme == "tls" || u.Scheme == "mqtts")
}

// tlsConfig loads the CA and client certificate (nil without TLS).
func (c Config) tlsConfig() (*tls.Config, error) {
	if !c.usesTLS() {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqtt ca: %s holds no PEM certificate", c.CAFile)
		}
		cfg.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// topic returns <prefix>/<device>/<leaf>.
func (c Config) topic(leaf string) string {
	return strings.Join([]string{c.TopicPrefix, c.DeviceID, leaf}, "/")
}
