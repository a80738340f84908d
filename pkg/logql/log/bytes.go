package log

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// byteUnits maps lowercased unit names to multipliers: decimal (kB = 1000)
// and binary (KiB = 1024), with the trailing "b" optional, as LogQL's
// bytes() and byte label filters accept them.
var byteUnits = map[string]float64{
	"": 1, "b": 1,
	"k": 1e3, "kb": 1e3, "ki": 1 << 10, "kib": 1 << 10,
	"m": 1e6, "mb": 1e6, "mi": 1 << 20, "mib": 1 << 20,
	"g": 1e9, "gb": 1e9, "gi": 1 << 30, "gib": 1 << 30,
	"t": 1e12, "tb": 1e12, "ti": 1 << 40, "tib": 1 << 40,
	"p": 1e15, "pb": 1e15, "pi": 1 << 50, "pib": 1 << 50,
	"e": 1e18, "eb": 1e18, "ei": 1 << 60, "eib": 1 << 60,
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
	f, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("invalid byte size %q: %w", s, err)
	}
	unit := strings.ToLower(strings.TrimSpace(s[i:]))
	m, ok := byteUnits[unit]
	if !ok {
		return 0, fmt.Errorf("invalid byte size %q: unknown unit %q", s, unit)
	}
	f *= m
	if f >= math.MaxUint64 {
		return 0, fmt.Errorf("invalid byte size %q: too large", s)
	}
	return uint64(f), nil
}
