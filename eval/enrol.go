package eval

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/facedhq/faced/models"
)

// Persons with several photos: how a probe is compared with a person
// enrolled from k photos. "best" takes the highest similarity to any of
// the person's faces; "mean" compares with the normalised mean of their
// embeddings (a template).

// Strategies of EnrolmentRun.
const (
	StrategyBest = "best"
	StrategyMean = "mean"
)

// EnrolmentPoint is the result of enrolling every person from Photos
// photos and identifying the rest of their photos at one threshold.
type EnrolmentPoint struct {
	Photos   int     `json:"photos"`
	Strategy string  `json:"strategy"`
	TAR      float64 `json:"tar"` // probes matching their own person
	FAR      float64 `json:"far"` // probe-person pairs of different people accepted
	Persons  int     `json:"persons"`
	Probes   int     `json:"probes"`
}

// EnrolmentRun enrols every identity with more than max(photos) images
// from its first images (in Labelled order, sorted by the caller) and
// uses its remaining images as probes, the same probes for every count,
// so the counts compare like with like. A probe is scored against every
// enrolled person; TAR counts its own person at or above threshold, FAR
// the other persons at or above it.
func EnrolmentRun(imgs []Labelled, threshold float64, photos []int) ([]EnrolmentPoint, error) {
	if len(photos) == 0 {
		return nil, errors.New("eval: no photo counts")
	}
	most := slices.Max(photos)
	if slices.Min(photos) < 1 {
		return nil, errors.New("eval: photo counts start at 1")
	}
	byID := map[string][]Labelled{}
	var order []string
	for _, im := range imgs {
		if _, ok := byID[im.Identity]; !ok {
			order = append(order, im.Identity)
		}
		byID[im.Identity] = append(byID[im.Identity], im)
	}
	var people []string
	for _, id := range order {
		if len(byID[id]) > most {
			people = append(people, id)
		}
	}
	if len(people) < 2 {
		return nil, fmt.Errorf("eval: need 2 people with more than %d photos, have %d", most, len(people))
	}
	var out []EnrolmentPoint
	for _, k := range photos {
		for _, strat := range []string{StrategyBest, StrategyMean} {
			if k == 1 && strat == StrategyMean {
				continue // one photo: both strategies are the same
			}
			gallery := make([][][]float32, len(people))
			for i, id := range people {
				faces := byID[id][:k]
				if strat == StrategyMean {
					gallery[i] = [][]float32{meanTemplate(faces)}
				} else {
					for _, f := range faces {
						gallery[i] = append(gallery[i], f.Vec)
					}
				}
			}
			pt := EnrolmentPoint{Photos: k, Strategy: strat, Persons: len(people)}
			var accepted, impostors, hits int64
			for i, id := range people {
				for _, probe := range byID[id][most:] {
					pt.Probes++
					for j, g := range gallery {
						s := float64(0)
						for n, v := range g {
							if c := float64(dot(probe.Vec, v)); n == 0 || c > s {
								s = c
							}
						}
						switch {
						case j == i && s >= threshold:
							hits++
						case j != i:
							impostors++
							if s >= threshold {
								accepted++
							}
						}
					}
				}
			}
			pt.TAR = float64(hits) / float64(pt.Probes)
			pt.FAR = float64(accepted) / float64(max(impostors, 1))
			out = append(out, pt)
		}
	}
	return out, nil
}

// meanTemplate is the unit-length mean of unit vectors.
func meanTemplate(faces []Labelled) []float32 {
	m := make([]float32, len(faces[0].Vec))
	for _, f := range faces {
		for i, x := range f.Vec {
			m[i] += x
		}
	}
	return models.L2Normalize(m)
}

// IdentityOf is the person of an LFW-layout path ("Name/Name_0001.jpg"),
// or "" for a path with no folder.
func IdentityOf(rel string) string {
	rel = strings.ReplaceAll(rel, "\\", "/")
	i := strings.LastIndexByte(rel, '/')
	if i <= 0 {
		return ""
	}
	return rel[:i]
}
