//go:build race

package wcsim

// raceSlowdown scales latency budgets under the race detector.
const raceSlowdown = 10
