//go:build !linux

package store

// mmapFlags: MAP_POPULATE is Linux-only; elsewhere the file is faulted in
// as it is read.
const mmapFlags = 0
