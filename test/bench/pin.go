package main

import (
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// proxyCPUs is -proxy-cpus: the CPUs the proxies under test run on, in
// taskset's list syntax; empty: not pinned.
var proxyCPUs string

// proxyCommand is the command that runs a proxy under test: pinned to
// proxyCPUs with taskset when set (taskset execs it, so the PID is the
// proxy's; the Go runtime sizes GOMAXPROCS to the pinned CPUs).
func proxyCommand(name string, args ...string) *exec.Cmd {
	if proxyCPUs == "" {
		return exec.Command(name, args...)
	}
	return exec.Command("taskset", append([]string{"-c", proxyCPUs, name}, args...)...)
}

// checkPinning refuses -proxy-cpus when the runner may run on those CPUs
// itself: the point is that the proxies have them to themselves.
func checkPinning() error {
	if proxyCPUs == "" {
		return nil
	}
	cpus, err := parseCPUList(proxyCPUs)
	if err != nil {
		return fmt.Errorf("-proxy-cpus %q: %w", proxyCPUs, err)
	}
	var own unix.CPUSet
	if err := unix.SchedGetaffinity(0, &own); err != nil {
		return err
	}
	for _, c := range cpus {
		if own.IsSet(c) {
			return fmt.Errorf("-proxy-cpus %s: the runner may run on CPU %d too; start it with taskset on the other CPUs, for example: taskset -c 0 go run ./test/bench -proxy-cpus 1", proxyCPUs, c)
		}
	}
	return nil
}

// parseCPUList parses a taskset CPU list such as "1" or "2-3,5".
func parseCPUList(list string) ([]int, error) {
	var cpus []int
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		first, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CPU number", lo)
		}
		last := first
		if isRange {
			if last, err = strconv.Atoi(hi); err != nil || last < first {
				return nil, fmt.Errorf("%q is not a CPU range", part)
			}
		}
		for c := first; c <= last; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}
