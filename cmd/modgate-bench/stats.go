package main

import (
	"math"
	"slices"
)

// summary is the distribution of one duration, in milliseconds.
type summary struct {
	Name  string  `json:"name"`
	N     int     `json:"n"`
	P50   float64 `json:"p50_ms"`
	P95   float64 `json:"p95_ms"`
	Max   float64 `json:"max_ms"`
	Mean  float64 `json:"mean_ms"`
	Total float64 `json:"total_ms"`
}

func summarize(name string, v []float64) summary {
	s := summary{Name: name, N: len(v), P50: percentile(v, 50), P95: percentile(v, 95)}
	for _, x := range v {
		s.Total += x
		s.Max = max(s.Max, x)
	}
	if len(v) > 0 {
		s.Mean = s.Total / float64(len(v))
	}
	return s
}

// percentile returns the p-th percentile of v by the nearest-rank method:
// the smallest value such that at least p% of the values are at most it.
// It returns 0 for no values.
func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}
