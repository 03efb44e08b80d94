package daemon

import "path/filepath"

// DBPath is the store's file inside a data directory.
func DBPath(dataDir string) string { return filepath.Join(dataDir, "faced.db") }
