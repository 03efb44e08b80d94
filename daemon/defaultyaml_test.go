package daemon

import (
	"bytes"
	"reflect"
	"slices"
	"testing"

	"gopkg.in/yaml.v3"
)

// default.yaml (faced config default) is DefaultConfig: decoded onto a zero
// Config it gives exactly DefaultConfig, and it spells out every setting,
// so neither can change without the other.
func TestDefaultYAMLIsDefaultConfig(t *testing.T) {
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(DefaultYAML()))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("default.yaml: %v", err)
	}
	// A list written [] decodes as empty, DefaultConfig has nil: the same
	// setting.
	normalise := func(c *Config) {
		for _, s := range settings() {
			v := reflect.ValueOf(c).Elem().FieldByIndex(s.Index)
			if v.Kind() == reflect.Slice && v.Len() == 0 {
				v.Set(reflect.Zero(v.Type()))
			}
		}
	}
	want := DefaultConfig()
	normalise(&cfg)
	normalise(&want)
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("default.yaml decodes to\n %+v\nDefaultConfig is\n %+v", cfg, want)
	}

	// Every setting is written out (a zero default is still documented).
	var root yaml.Node
	if err := yaml.Unmarshal(DefaultYAML(), &root); err != nil {
		t.Fatal(err)
	}
	var keys []string
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, prefix)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				p := n.Content[i].Value
				if prefix != "" {
					p = prefix + "." + p
				}
				keys = append(keys, p)
				walk(n.Content[i+1], p)
			}
		}
	}
	walk(&root, "")
	for _, s := range settings() {
		if !slices.Contains(keys, s.Path) {
			t.Errorf("default.yaml lacks %s", s.Path)
		}
	}

	// And it is a valid file as serve reads it.
	loaded, err := LoadConfig(writeConfig(t, string(DefaultYAML())))
	if err != nil {
		t.Fatal(err)
	}
	normalise(&loaded)
	if !reflect.DeepEqual(loaded, want) {
		t.Errorf("LoadConfig(default.yaml) = %+v", loaded)
	}
	if err := loaded.Validate(); err != nil {
		t.Errorf("default.yaml does not validate: %v", err)
	}
}
