// Package layout holds no code: its test checks the dependency rules of
// README.md ("Layout") and DESIGN.md against what the packages import, so
// that a rule broken by a new import fails `go test` instead of waiting
// for a reviewer to notice.
package layout
