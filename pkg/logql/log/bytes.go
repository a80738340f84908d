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

// QueriedBytes is the value Loki 3.7 really compares a byte-size literal
// of a label filter with (`| size >= 22GiB`). Its query frontend prints the
// parsed query as text for the queriers, and prints a byte size in decimal
// units at display precision, one decimal below 10 and none above, after
// rounding to tenths: 22GiB (23,622,320,128 bytes) goes out as "24GB", so
// under `>= 22GiB` a value of 22.3GiB (23.94e9 bytes) is dropped and only
// values from 24e9 bytes pass. Lokal reproduces that so answers agree with Loki;
// 1KB, 2MB and other round decimal sizes are unchanged.
func QueriedBytes(n uint64) uint64 {
	if n < 10 {
		return n
	}
	e := math.Floor(math.Log(float64(n)) / math.Log(1000))
	unit := math.Pow(1000, e)
	tenths := math.Floor(float64(n)/unit*10+0.5) / 10
	prec := 0
	if tenths < 10 {
		prec = 1
	}
	shown, err := strconv.ParseFloat(strconv.FormatFloat(tenths, 'f', prec, 64), 64)
	if err != nil {
		return n
	}
	v := shown * unit
	if v >= math.MaxUint64 {
		return math.MaxUint64
	}
	return uint64(v)
}
