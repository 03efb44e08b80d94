package index

import (
	"cmp"
	"slices"
)

// worse orders hits: lower score is worse, and of equal scores the higher
// ID, so that ties are always resolved the same way.
func worse(a, b Hit) bool {
	return a.Score < b.Score || (a.Score == b.Score && a.ID > b.ID)
}

// topk keeps the k best hits offered, as a heap with the worst on top.
type topk struct {
	k int
	h []Hit
}

func (t *topk) reset(k int) {
	t.k = k
	t.h = t.h[:0]
}

func (t *topk) full() bool { return len(t.h) == t.k }

// floor is the score a hit must at least have to enter (when full).
func (t *topk) floor() float32 { return t.h[0].Score }

// offer adds the hit if it is among the k best so far and reports whether
// it did.
func (t *topk) offer(h Hit) bool {
	if len(t.h) < t.k {
		t.h = append(t.h, h)
		t.up(len(t.h) - 1)
		return true
	}
	if !worse(t.h[0], h) {
		return false
	}
	t.h[0] = h
	t.down(0)
	return true
}

func (t *topk) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !worse(t.h[i], t.h[p]) {
			return
		}
		t.h[i], t.h[p] = t.h[p], t.h[i]
		i = p
	}
}

func (t *topk) down(i int) {
	n := len(t.h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && worse(t.h[r], t.h[l]) {
			m = r
		}
		if !worse(t.h[m], t.h[i]) {
			return
		}
		t.h[i], t.h[m] = t.h[m], t.h[i]
		i = m
	}
}

// sortHits orders hits best first.
func sortHits(h []Hit) {
	slices.SortFunc(h, func(a, b Hit) int {
		if c := cmp.Compare(b.Score, a.Score); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
}
