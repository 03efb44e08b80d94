package main

import (
	"bytes"
	"strings"
	"syscall"
	"testing"

	"github.com/facedhq/faced/internal/mqtttest"
)

// TestServeDoesNotLogBrokerCredentials: credentials given in the broker
// URL (tcp://user:password@host:port) work, and never reach the log: not
// when connected, not when the broker refuses them, not when the URL does
// not parse. The real daemon against a real Mosquitto that wants a
// password.
func TestServeDoesNotLogBrokerCredentials(t *testing.T) {
	const user, good, bad = "door-user-7", "G00d-Secret-Pa55", "Wr0ng-Secret-Pa55"
	broker := mqtttest.Start(t, mqtttest.Options{Users: map[string]string{user: good}})
	hostPort := strings.TrimPrefix(broker.URL(), "tcp://")
	secrets := []string{good, bad, user}
	clean := func(what, log string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(log, s) {
				t.Errorf("%s: the log holds %q:\n%s", what, s, log)
			}
		}
	}

	// Accepted and used: the broker lets the device in.
	c := startChild(t, nil, nil, false, "serve", "--data-dir", t.TempDir(), "--listen", freeAddr(t), "--attributes=false",
		"--mqtt", "tcp://"+user+":"+good+"@"+hostPort, "--device-id", "door-7")
	c.waitLog(t, "msg=\"mqtt: connected\"")
	c.signal(t, syscall.SIGTERM)
	c.wait(t)
	clean("connected", c.log.String())
	if !strings.Contains(c.log.String(), "tcp://***@"+hostPort) {
		t.Errorf("the log should still name the broker, with the credentials masked:\n%s", c.log)
	}

	// Refused: the failure is logged with its reason, not the password.
	c = startChild(t, nil, nil, false, "serve", "--data-dir", t.TempDir(), "--listen", freeAddr(t), "--attributes=false",
		"--mqtt", "tcp://"+user+":"+bad+"@"+hostPort, "--device-id", "door-7")
	c.waitLog(t, "cannot connect to the fleet broker")
	c.signal(t, syscall.SIGTERM)
	c.wait(t)
	clean("refused", c.log.String())

	// Does not parse (a bad escape in the password): the configuration
	// error names the setting, not the secret.
	var stdout, stderr bytes.Buffer
	t.Setenv("FACED_MQTT_URL", "tcp://"+user+":"+bad+"%zz@"+hostPort)
	err := run(t.Context(), []string{"config", "check"}, &stdout, &stderr)
	if err == nil || !strings.Contains(stderr.String(), "mqtt.url") {
		t.Fatalf("config check of a broken URL: %v\n%s", err, stderr.String())
	}
	clean("config check", stdout.String()+stderr.String()+err.Error())
}
