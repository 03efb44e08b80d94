package daemon

import _ "embed"

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML is the commented configuration file holding every setting at
// its default (`faced config default`); a test keeps it equal to
// DefaultConfig, so the two cannot drift.
func DefaultYAML() []byte { return defaultYAML }
