package service

// SetThreshold changes the threshold of requests that give none (the
// daemon's SIGHUP reload); safe while requests run.
func (s *Service) SetThreshold(t Threshold) { s.threshold.Store(&t) }

// CurrentThreshold is the threshold of requests that give none: the one
// last set by SetThreshold, else Config.Threshold.
func (s *Service) CurrentThreshold() Threshold {
	if t := s.threshold.Load(); t != nil {
		return *t
	}
	return s.cfg.Threshold
}
