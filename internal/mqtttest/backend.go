package mqtttest

import (
	"crypto/tls"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/facedhq/faced/internal/testenv"
)

// Msg is a message the backend received.
type Msg struct {
	Topic    string
	Payload  []byte
	Retained bool
}

// Backend is the fleet side of a test: it subscribes (persistent session,
// QoS 1) and records every message, and publishes operations.
type Backend struct {
	t      testing.TB
	client mqtt.Client

	mu   sync.Mutex
	msgs []Msg
	news chan struct{}
}

// NewBackend connects clientID to the broker at url and subscribes to
// filters. The session persists, so messages published while it is
// disconnected (broker restarts included) reach it later.
func NewBackend(t testing.TB, url, clientID string, filters ...string) *Backend {
	t.Helper()
	return newBackend(t, url, clientID, nil, filters)
}

// NewBackendTLS is NewBackend over TLS, trusting certs.CA and presenting
// the client certificate.
func NewBackendTLS(t testing.TB, url, clientID string, certs testenv.Certs, filters ...string) *Backend {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(certs.ClientCert, certs.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	return newBackend(t, url, clientID, &tls.Config{RootCAs: certs.Pool(t), Certificates: []tls.Certificate{cert}}, filters)
}

func newBackend(t testing.TB, url, clientID string, tlsCfg *tls.Config, filters []string) *Backend {
	b := &Backend{t: t, news: make(chan struct{}, 1)}
	opts := mqtt.NewClientOptions().AddBroker(url).SetClientID(clientID).SetCleanSession(false).
		SetAutoReconnect(true).SetMaxReconnectInterval(200 * time.Millisecond).SetConnectRetry(true).
		SetConnectRetryInterval(200 * time.Millisecond).
		SetOnConnectHandler(func(c mqtt.Client) {
			subs := map[string]byte{}
			for _, f := range filters {
				subs[f] = 1
			}
			c.SubscribeMultiple(subs, nil).Wait()
		}).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			b.mu.Lock()
			b.msgs = append(b.msgs, Msg{Topic: m.Topic(), Payload: append([]byte(nil), m.Payload()...), Retained: m.Retained()})
			b.mu.Unlock()
			select {
			case b.news <- struct{}{}:
			default:
			}
		})
	if tlsCfg != nil {
		opts.SetTLSConfig(tlsCfg)
	}
	b.client = mqtt.NewClient(opts)
	if tok := b.client.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("backend connect: %v", tok.Error())
	}
	t.Cleanup(func() { b.client.Disconnect(100) })
	return b
}

// Publish sends v (JSON-encoded unless it is []byte) at QoS 1.
func (b *Backend) Publish(topic string, v any, retained bool) {
	b.t.Helper()
	payload, ok := v.([]byte)
	if !ok {
		var err error
		if payload, err = json.Marshal(v); err != nil {
			b.t.Fatal(err)
		}
	}
	tok := b.client.Publish(topic, 1, retained, payload)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		b.t.Fatalf("backend publish %s: %v", topic, tok.Error())
	}
}

// Messages returns what arrived on topics ending in suffix ("" for all).
func (b *Backend) Messages(suffix string) []Msg {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []Msg
	for _, m := range b.msgs {
		if strings.HasSuffix(m.Topic, suffix) {
			out = append(out, m)
		}
	}
	return out
}

// WaitFor polls the messages on topics ending in suffix until done
// accepts them, failing the test after timeout with what arrived.
func (b *Backend) WaitFor(suffix string, timeout time.Duration, done func([]Msg) bool) []Msg {
	b.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		msgs := b.Messages(suffix)
		if done(msgs) {
			return msgs
		}
		select {
		case <-b.news:
		case <-time.After(50 * time.Millisecond):
		case <-deadline.C:
			var sb strings.Builder
			for _, m := range msgs {
				sb.WriteString(m.Topic + " " + string(m.Payload) + "\n")
			}
			b.t.Fatalf("after %v, %d messages on *%s do not satisfy the test:\n%s", timeout, len(msgs), suffix, sb.String())
			return nil
		}
	}
}

// Decode unmarshals every message's payload into a T.
func Decode[T any](t testing.TB, msgs []Msg) []T {
	t.Helper()
	out := make([]T, len(msgs))
	for i, m := range msgs {
		if err := json.Unmarshal(m.Payload, &out[i]); err != nil {
			t.Fatalf("decode %s: %v: %s", m.Topic, err, m.Payload)
		}
	}
	return out
}
