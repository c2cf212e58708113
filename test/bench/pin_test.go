package main

import (
	"slices"
	"testing"
)

func TestParseCPUList(t *testing.T) {
	tests := []struct {
		list string
		want []int
		ok   bool
	}{
		{"1", []int{1}, true},
		{"0,2-3", []int{0, 2, 3}, true},
		{" 4 ", []int{4}, true},
		{"x", nil, false},
		{"3-1", nil, false},
		{"1-", nil, false},
	}
	for _, tt := range tests {
		got, err := parseCPUList(tt.list)
		if (err == nil) != tt.ok || !slices.Equal(got, tt.want) {
			t.Errorf("parseCPUList(%q) = %v, %v; want %v (ok %v)", tt.list, got, err, tt.want, tt.ok)
		}
	}
}
