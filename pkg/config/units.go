package config

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written the way Promtail and Loki write them:
// Go syntax ("1s", "168h") plus the day and week units "7d", "2w".
type Duration time.Duration

// ParseDuration parses Go durations plus d (24h) and w (7d) units.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	if s == "0" {
		return 0, nil
	}
	isNum := func(c byte) bool { return (c >= '0' && c <= '9') || c == '.' }
	var total time.Duration
	for rest := s; rest != ""; {
		i := 0
		for i < len(rest) && isNum(rest[i]) {
			i++
		}
		j := i
		for j < len(rest) && !isNum(rest[j]) {
			j++
		}
		if i == 0 || j == i {
			return 0, fmt.Errorf("invalid duration %q: use e.g. 30s, 5m, 168h, 7d", s)
		}
		num, unit := rest[:i], rest[i:j]
		var d time.Duration
		switch unit {
		case "d", "w":
			f, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, fmt.Errorf("invalid duration %q: use e.g. 30s, 5m, 168h, 7d", s)
			}
			d = time.Duration(f * float64(24*time.Hour))
			if unit == "w" {
				d *= 7
			}
		default:
			var err error
			if d, err = time.ParseDuration(num + unit); err != nil {
				return 0, fmt.Errorf("invalid duration %q: use e.g. 30s, 5m, 168h, 7d", s)
			}
		}
		total += d
		rest = rest[j:]
	}
	return total, nil
}

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String prints the duration in Go syntax.
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML accepts a duration string, or a plain number of seconds.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a duration such as 30s or 168h")
	}
	if n.Value == "" {
		*d = 0 // an empty form field: the default applies
		return nil
	}
	if n.Tag == "!!int" || n.Tag == "!!float" {
		f, err := strconv.ParseFloat(n.Value, 64)
		if err != nil || f < 0 {
			return fmt.Errorf("invalid duration %q", n.Value)
		}
		*d = Duration(f * float64(time.Second))
		return nil
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML prints the Go syntax.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalJSON prints the Go syntax as a JSON string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON accepts what UnmarshalYAML accepts.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var n yaml.Node
	if err := yaml.Unmarshal(b, &n); err != nil || len(n.Content) != 1 {
		return fmt.Errorf("invalid duration %s", b)
	}
	return d.UnmarshalYAML(n.Content[0])
}

// ByteSize is a size in bytes written as a plain number or with a unit:
// 10GiB, 256KiB, 100MB (SI units are powers of 1000, binary units of 1024).
type ByteSize int64

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000}, {"TB", 1000 * 1000 * 1000 * 1000},
	{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"Ti", 1 << 40},
	{"K", 1000}, {"M", 1000 * 1000}, {"G", 1000 * 1000 * 1000}, {"T", 1000 * 1000 * 1000 * 1000},
	{"B", 1},
}

// ParseByteSize parses "10GiB", "256KiB", "1.5GB", "4096".
func ParseByteSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(t, u.suffix) {
			t = strings.TrimSpace(strings.TrimSuffix(t, u.suffix))
			mult = u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || t == "" {
		return 0, fmt.Errorf("invalid size %q: use e.g. 4096, 256KiB, 10GiB", s)
	}
	if f < 0 {
		return 0, fmt.Errorf("invalid size %q: must not be negative", s)
	}
	v := f * float64(mult)
	if v > 1<<62 {
		return 0, fmt.Errorf("invalid size %q: too large", s)
	}
	return int64(v), nil
}

// HumanBytes prints a size for people, rounded, in binary units ("1.5 GiB");
// ByteSize.String prints sizes exactly, for configs.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// String prints the size with the largest binary unit that divides it.
func (b ByteSize) String() string {
	v := int64(b)
	for _, u := range []struct {
		s string
		m int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if v != 0 && v%u.m == 0 {
			return strconv.FormatInt(v/u.m, 10) + u.s
		}
	}
	return strconv.FormatInt(v, 10)
}

// UnmarshalYAML accepts a number of bytes or a size with a unit.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected a size such as 10GiB")
	}
	if n.Value == "" {
		*b = 0 // an empty form field: the default applies
		return nil
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return err
	}
	*b = ByteSize(v)
	return nil
}

// MarshalYAML prints the size with a unit.
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }

// MarshalJSON prints the size with a unit as a JSON string.
func (b ByteSize) MarshalJSON() ([]byte, error) { return json.Marshal(b.String()) }

// UnmarshalJSON accepts what UnmarshalYAML accepts.
func (b *ByteSize) UnmarshalJSON(data []byte) error {
	var n yaml.Node
	if err := yaml.Unmarshal(data, &n); err != nil || len(n.Content) != 1 {
		return fmt.Errorf("invalid size %s", data)
	}
	return b.UnmarshalYAML(n.Content[0])
}
