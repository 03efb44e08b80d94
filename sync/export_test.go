package sync

import (
	"time"

	"github.com/facedhq/faced/store"
)

// Test hooks: the gap handling's bound and throttle, set between New and
// Start so that tests need neither a thousand operations nor 30 s.

// SetHoldLimits replaces the bound of held operations.
func SetHoldLimits(s *Syncer, lim store.HoldLimits) { s.limits = lim }

// SetClock replaces the clock of the snapshot requests' throttle.
func SetClock(s *Syncer, now func() time.Time) { s.now = now }
