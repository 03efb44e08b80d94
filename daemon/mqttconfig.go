package daemon

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	fleetsync "github.com/facedhq/faced/sync"
)

// MQTTConfig connects the device to its fleet backend (sync/README.md has
// the protocol). Sync is off while url is empty; the device then works
// alone and queues nothing.
type MQTTConfig struct {
	// URL of the broker: tcp://host:1883, or ssl://host:8883 for TLS
	// (flag --mqtt). It may carry credentials (tcp://user:pass@host:1883),
	// which are never logged; username and password (FACED_MQTT_PASSWORD)
	// are better, as the URL also shows in process listings when given as
	// a flag. Not both.
	URL string `yaml:"url"`
	// DeviceID names the device in topics (flag --device-id); empty means
	// the host name.
	DeviceID string `yaml:"device_id"`
	// TopicPrefix is the first level(s) of every topic.
	TopicPrefix string `yaml:"topic_prefix"`
	// Username and Password authenticate with the broker (prefer
	// FACED_MQTT_PASSWORD to a password in the file).
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// CAFile verifies the broker (default: the system's roots); CertFile
	// and KeyFile are the device's client certificate.
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// KeepAlive is the MQTT keep-alive; ConnectTimeout bounds one attempt.
	KeepAlive      time.Duration `yaml:"keepalive"`
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// MaxReconnectInterval caps the backoff between attempts (1 s,
	// doubling).
	MaxReconnectInterval time.Duration `yaml:"max_reconnect_interval"`
	// StatusInterval refreshes the retained status while connected.
	StatusInterval time.Duration `yaml:"status_interval"`
	// OutboxMaxMessages and OutboxMaxBytes bound the store-and-forward
	// queue; when full the oldest messages are dropped (and counted).
	OutboxMaxMessages int   `yaml:"outbox_max_messages"`
	OutboxMaxBytes    int64 `yaml:"outbox_max_bytes"`
	// ShutdownFlush is how long a shutdown may spend publishing the outbox
	// (what is left stays queued for the next start).
	ShutdownFlush time.Duration `yaml:"shutdown_flush"`
}

// DefaultMQTT is off, with working settings for when a URL is given.
func DefaultMQTT() MQTTConfig {
	return MQTTConfig{
		TopicPrefix:          "faced",
		KeepAlive:            30 * time.Second,
		ConnectTimeout:       10 * time.Second,
		MaxReconnectInterval: time.Minute,
		StatusInterval:       time.Minute,
		OutboxMaxMessages:    100_000,
		OutboxMaxBytes:       256 << 20,
		ShutdownFlush:        5 * time.Second,
	}
}

// Enabled reports whether fleet sync is configured.
func (m MQTTConfig) Enabled() bool { return m.URL != "" }

func (m MQTTConfig) validate(bad func(field, format string, args ...any)) {
	if m.OutboxMaxMessages <= 0 {
		bad("mqtt.outbox_max_messages", "must be positive")
	}
	if m.OutboxMaxBytes <= 0 {
		bad("mqtt.outbox_max_bytes", "must be positive")
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{
		{"mqtt.keepalive", m.KeepAlive}, {"mqtt.connect_timeout", m.ConnectTimeout},
		{"mqtt.max_reconnect_interval", m.MaxReconnectInterval}, {"mqtt.status_interval", m.StatusInterval},
	} {
		if d.v <= 0 {
			bad(d.field, "must be positive")
		}
	}
	if m.ShutdownFlush < 0 {
		bad("mqtt.shutdown_flush", "must not be negative")
	}
	if err := fleetsync.CheckPrefix(m.TopicPrefix); err != nil {
		bad("mqtt.topic_prefix", "%v", err)
	}
	if m.DeviceID != "" {
		if err := fleetsync.CheckTopicLevel(m.DeviceID); err != nil {
			bad("mqtt.device_id", "%v", err)
		}
	}
	if !m.Enabled() {
		return
	}
	if err := fleetsync.CheckURL(m.URL); err != nil {
		bad("mqtt.url", "%v", err)
	} else if fleetsync.URLHasCredentials(m.URL) && (m.Username != "" || m.Password != "") {
		bad("mqtt.url", "carries a user name or password and mqtt.username or mqtt.password is set too: give the credentials once")
	}
	if (m.CertFile == "") != (m.KeyFile == "") {
		bad("mqtt.cert_file", "cert_file and key_file go together")
	}
}

// SyncConfig resolves the settings for the syncer: the device id defaults
// to the host name (made topic-safe).
func (m MQTTConfig) SyncConfig(version string) (fleetsync.Config, error) {
	id := m.DeviceID
	if id == "" {
		host, err := os.Hostname()
		if err != nil {
			return fleetsync.Config{}, fmt.Errorf("mqtt.device_id is empty and the host name is unknown: %w", err)
		}
		id = topicSafe(host)
	}
	return fleetsync.Config{
		URL: m.URL, DeviceID: id, TopicPrefix: m.TopicPrefix, Username: m.Username, Password: m.Password,
		CAFile: m.CAFile, CertFile: m.CertFile, KeyFile: m.KeyFile,
		KeepAlive: m.KeepAlive, ConnectTimeout: m.ConnectTimeout, MaxReconnectInterval: m.MaxReconnectInterval,
		StatusInterval: m.StatusInterval, Version: version,
	}, nil
}

var notTopicSafe = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// topicSafe maps a host name onto the device id alphabet.
func topicSafe(s string) string {
	s = strings.Trim(notTopicSafe.ReplaceAllString(s, "-"), "-")
	if len(s) > 64 {
		s = s[:64]
	}
	if s == "" {
		s = "faced"
	}
	return s
}
