package log

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
)

// ipMatcher is the parsed pattern of ip("..."): one address, a CIDR prefix
// or an inclusive range "from-to".
type ipMatcher struct {
	addr     netip.Addr
	prefix   netip.Prefix
	from, to netip.Addr
	kind     int // 0 addr, 1 prefix, 2 range
}

func parseIPPattern(p string) (*ipMatcher, error) {
	if a, err := netip.ParseAddr(p); err == nil {
		return &ipMatcher{addr: a, kind: 0}, nil
	}
	if pf, err := netip.ParsePrefix(p); err == nil {
		return &ipMatcher{prefix: pf.Masked(), kind: 1}, nil
	}
	if lo, hi, ok := strings.Cut(p, "-"); ok {
		from, err1 := netip.ParseAddr(lo)
		to, err2 := netip.ParseAddr(hi)
		if err1 == nil && err2 == nil && from.Is4() == to.Is4() && from.Compare(to) <= 0 && from.Zone() == "" && to.Zone() == "" {
			return &ipMatcher{from: from, to: to, kind: 2}, nil
		}
	}
	// Loki's wording; the pattern may be an address, a CIDR prefix or a range a-b.
	return nil, fmt.Errorf("ip: invalid pattern: %q", p)
}

func (m *ipMatcher) contains(ip netip.Addr) bool {
	switch m.kind {
	case 0:
		return m.addr.Compare(ip) == 0
	case 1:
		return m.prefix.Contains(ip)
	default:
		return ip.Is4() == m.from.Is4() && m.from.Compare(ip) <= 0 && ip.Compare(m.to) <= 0
	}
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isHex(c byte) bool {
	return isDigit(c) || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

// looksIPv4 is true at a digit followed by a dot within three bytes.
func looksIPv4(s []byte, i int) bool {
	return i+3 < len(s) && isDigit(s[i]) && (s[i+1] == '.' || s[i+2] == '.' || s[i+3] == '.')
}

// looksIPv6 is true at "::h" or at one to four hex digits followed by ':'.
func looksIPv6(s []byte, i int) bool {
	if i+4 >= len(s) {
		return false
	}
	if s[i] == ':' && s[i+1] == ':' && isHex(s[i+2]) {
		return true
	}
	for k := 1; k <= 4; k++ {
		if !isHex(s[i+k-1]) {
			return false
		}
		if s[i+k] == ':' {
			return true
		}
	}
	return false
}

func spanOf(s []byte, ok func(byte) bool) int {
	for i, c := range s {
		if !ok(c) {
			return i
		}
	}
	return len(s)
}

func ipv4Char(c byte) bool { return isDigit(c) || c == '.' }
func ipv6Char(c byte) bool { return isHex(c) || c == ':' || c == '.' }

// matchAnywhere reports whether the line holds an address the pattern
// contains. Like Loki it scans for candidates (a digit with a dot soon
// after, or hex digits then a colon), takes the longest run of address
// characters from there and parses it, so "93.180.71.3" never matches
// ip("3.180.71.3") while "127.0.0.1:8080" holds 127.0.0.1.
func (m *ipMatcher) matchAnywhere(line []byte) bool {
	for i := 0; i < len(line); i++ {
		var n int
		switch {
		case looksIPv4(line, i):
			n = spanOf(line[i:], ipv4Char)
		case looksIPv6(line, i):
			n = spanOf(line[i:], ipv6Char)
		default:
			continue
		}
		if ip, ok := parseCandidate(line[i : i+n]); ok && m.contains(ip) {
			return true
		}
		i += n
	}
	return false
}

// parseCandidate parses an address candidate without allocating: IPv4 by
// hand, IPv6 through netip only when the colons can form an address (most
// candidates in logs are clock times such as 05:37:46, and netip's errors
// allocate).
func parseCandidate(b []byte) (netip.Addr, bool) {
	colons := 0
	for _, c := range b {
		if c == ':' {
			colons++
		}
	}
	if colons == 0 {
		return parseIPv4(b)
	}
	hasDouble := bytes.Contains(b, []byte("::"))
	if !hasDouble && colons != 7 && !(colons == 6 && bytes.IndexByte(b, '.') >= 0) {
		return netip.Addr{}, false
	}
	ip, err := netip.ParseAddr(unsafeString(b))
	return ip, err == nil
}

// parseIPv4 accepts exactly what netip.ParseAddr accepts for IPv4: four
// decimal octets up to 255 without leading zeros.
func parseIPv4(b []byte) (netip.Addr, bool) {
	var out [4]byte
	part, digits, val := 0, 0, 0
	for i := 0; i <= len(b); i++ {
		if i == len(b) || b[i] == '.' {
			if digits == 0 || part > 3 {
				return netip.Addr{}, false
			}
			out[part] = byte(val)
			part++
			digits, val = 0, 0
			continue
		}
		c := b[i]
		if !isDigit(c) || (digits == 1 && val == 0) {
			return netip.Addr{}, false
		}
		val = val*10 + int(c-'0')
		digits++
		if val > 255 {
			return netip.Addr{}, false
		}
	}
	if part != 4 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(out), true
}

// ipLineFilter is |= ip("...").
type ipLineFilter struct{ m *ipMatcher }

func (f ipLineFilter) Match(line []byte) bool { return f.m.matchAnywhere(line) }

// NewIPLineFilter builds `|= ip("pattern")`, or `!= ip("pattern")` when
// negate is set. The pattern is an address, a CIDR prefix or a range a-b.
func NewIPLineFilter(pattern string, negate bool) (Filter, error) {
	m, err := parseIPPattern(pattern)
	if err != nil {
		return nil, err
	}
	if negate {
		return NotFilter{F: ipLineFilter{m: m}}, nil
	}
	return ipLineFilter{m: m}, nil
}
