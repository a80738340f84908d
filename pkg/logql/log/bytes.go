package log

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// byteUnit maps a lowercased unit name to its multiplier: decimal (kB =
// 1000) and binary (KiB = 1024), the trailing "b" optional, as LogQL's
// bytes() and byte label filters accept them.
func byteUnit(u string) (float64, bool) {
	u = strings.TrimSuffix(u, "b")
	if u == "" {
		return 1, true
	}
	binary := strings.HasSuffix(u, "i")
	u = strings.TrimSuffix(u, "i")
	if len(u) != 1 {
		return 0, false
	}
	exp := strings.IndexByte("kmgtpe", u[0]) + 1
	if exp == 0 {
		return 0, false
	}
	if binary {
		return math.Pow(1024, float64(exp)), true
	}
	return math.Pow(1000, float64(exp)), true
}

// ParseBytes parses a human-readable byte size such as "20MB", "1.5 KiB",
// "42" or "1,024 kB" into a number of bytes.
func ParseBytes(s string) (uint64, error) {
	i := 0
	comma := false
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.' || s[i] == ',') {
		if s[i] == ',' {
			comma = true
		}
		i++
	}
	num := s[:i]
	if comma {
		num = strings.ReplaceAll(num, ",", "")
	}
	// The error texts are go-humanize's, which Loki shows in __error_details__.
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, err
	}
	unit := strings.ToLower(strings.TrimSpace(s[i:]))
	m, ok := byteUnit(unit)
	if !ok {
		return 0, fmt.Errorf("unhandled size name: %v", unit)
	}
	f *= m
	if f >= math.MaxUint64 {
		return 0, fmt.Errorf("too large: %v", s)
	}
	return uint64(f), nil
}
