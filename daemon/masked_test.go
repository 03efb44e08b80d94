package daemon

import (
	"strings"
	"testing"
)

func TestMaskedYAML(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MQTT.URL = "tcp://dev:hunter2pw@127.0.0.1:1883"
	cfg.MQTT.Password = "mqtt-password-1"
	cfg.Keys = []KeyConfig{{ID: "0123456789ab", Name: "door", SecretSHA256: strings.Repeat("ab", 32), Scopes: []string{"read"}}}
	cfg.Cameras = []CameraConfig{{ID: "front", URL: "rtsp://cam:campass9@192.0.2.7/stream"}}
	b, err := MaskedYAML(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := string(b)
	for _, secret := range []string{"hunter2pw", "mqtt-password-1", strings.Repeat("ab", 32), "campass9"} {
		if strings.Contains(out, secret) {
			t.Errorf("masked configuration shows %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{"tcp://dev:xxxxx@127.0.0.1:1883", "rtsp://cam:xxxxx@192.0.2.7/stream", "password: '********'", "name: door", "listen: " + cfg.Listen} {
		if !strings.Contains(out, want) {
			t.Errorf("masked configuration lacks %q:\n%s", want, out)
		}
	}
}
