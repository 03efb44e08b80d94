package daemon

import (
	"fmt"
	"net/url"

	"gopkg.in/yaml.v3"
)

// maskedValue replaces a secret in MaskedYAML.
const maskedValue = "********"

// secretFields are the settings whose values MaskedYAML hides wherever
// they appear: MQTT's password, a webhook's shared secret, a provisioned
// key's hash (not a secret, but nothing a viewer needs).
var secretFields = map[string]bool{"password": true, "secret": true, "secret_sha256": true}

// MaskedYAML is the effective configuration as YAML for display (the admin
// page's settings), with secrets masked: the values of password, secret
// and secret_sha256 (when set), and the password of any URL with
// credentials (a camera's rtsp://user:pass@host, the broker's URL).
func MaskedYAML(cfg Config) ([]byte, error) {
	var n yaml.Node
	if err := n.Encode(cfg); err != nil {
		return nil, fmt.Errorf("daemon: encode configuration: %w", err)
	}
	mask(&n)
	b, err := yaml.Marshal(&n)
	if err != nil {
		return nil, fmt.Errorf("daemon: encode configuration: %w", err)
	}
	return b, nil
}

// mask walks a YAML tree masking secret values in place.
func mask(n *yaml.Node) {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if v.Kind == yaml.ScalarNode && v.Value != "" && secretFields[k.Value] {
				v.Value, v.Tag, v.Style = maskedValue, "!!str", 0
				continue
			}
			if v.Kind == yaml.ScalarNode {
				v.Value = redactURL(v.Value)
			}
			mask(v)
		}
		return
	}
	for _, c := range n.Content {
		if c.Kind == yaml.ScalarNode {
			c.Value = redactURL(c.Value)
		}
		mask(c)
	}
}

// redactURL masks (as xxxxx) the password of a URL with credentials; anything else
// is returned as is.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, has := u.User.Password(); !has {
		return s
	}
	return u.Redacted() // user:xxxxx@

}
