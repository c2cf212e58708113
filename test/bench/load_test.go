package main

import (
	"slices"
	"testing"
	"time"
)

func TestMedianRound(t *testing.T) {
	byLatency := func(name string, p99 time.Duration) *result {
		return &result{scenario: name, lat: []time.Duration{p99}}
	}
	byRate := func(name string, rps float64) *result {
		return &result{scenario: name, rps: rps}
	}
	tests := []struct {
		name   string
		rounds []*result
		by     func(*result) float64
		want   string
		values []float64
	}{
		{"one", []*result{byLatency("a", 3e6)}, byP99, "a", []float64{3}},
		{"odd", []*result{byLatency("a", 9e6), byLatency("b", 1e6), byLatency("c", 5e6)}, byP99, "c", []float64{9, 1, 5}},
		{"even takes the lower middle", []*result{byLatency("a", 4e6), byLatency("b", 1e6), byLatency("c", 3e6), byLatency("d", 2e6)}, byP99, "d", []float64{4, 1, 3, 2}},
		{"ties keep the order run", []*result{byLatency("a", 2e6), byLatency("b", 2e6), byLatency("c", 2e6)}, byP99, "b", []float64{2, 2, 2}},
		{"by throughput", []*result{byRate("a", 7000), byRate("b", 9000), byRate("c", 8000)}, byThroughput, "c", []float64{7000, 9000, 8000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := medianRound(tt.rounds, tt.by)
			if got.scenario != tt.want {
				t.Errorf("median round = %s, want %s", got.scenario, tt.want)
			}
			if !slices.Equal(got.roundValues, tt.values) {
				t.Errorf("roundValues = %v, want %v in the order run", got.roundValues, tt.values)
			}
			if tt.rounds[0].roundValues != nil {
				t.Error("medianRound modified its input")
			}
		})
	}
}
