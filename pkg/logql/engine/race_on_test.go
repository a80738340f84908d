//go:build race

package engine_test

// raceEnabled trims the slowest cross-checks under the race detector,
// which makes them several times slower without finding more.
const raceEnabled = true
