package main

import (
	"slices"
	"testing"
	"time"
)

func TestMedianRound(t *testing.T) {
	run := func(name string, p99 time.Duration) *result {
		return &result{scenario: name, lat: []time.Duration{p99}}
	}
	tests := []struct {
		name   string
		rounds []*result
		want   string
	}{
		{"one", []*result{run("a", 3)}, "a"},
		{"odd", []*result{run("a", 9), run("b", 1), run("c", 5)}, "c"},
		{"even takes the lower middle", []*result{run("a", 4), run("b", 1), run("c", 3), run("d", 2)}, "d"},
		{"ties keep the order run", []*result{run("a", 2), run("b", 2), run("c", 2)}, "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := medianRound(tt.rounds)
			if got.scenario != tt.want {
				t.Errorf("median round = %s, want %s", got.scenario, tt.want)
			}
			var p99s []time.Duration
			for _, r := range tt.rounds {
				p99s = append(p99s, r.pct(0.99))
			}
			if !slices.Equal(got.roundP99s, p99s) {
				t.Errorf("roundP99s = %v, want %v in the order run", got.roundP99s, p99s)
			}
			if tt.rounds[0].roundP99s != nil {
				t.Error("medianRound modified its input")
			}
		})
	}
}
