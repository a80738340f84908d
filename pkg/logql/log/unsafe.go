package log

import "unsafe"

// unsafeBytes views s as bytes without copying. Stages never write into
// their input, which is what makes this safe: lines from the store are
// strings and copying each one would dominate filter cost.
func unsafeBytes(s string) []byte {
	if s == "" {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

func unsafeBytesPtr(s string) *byte {
	return unsafe.StringData(s)
}

// unsafeString views b as a string without copying; only for lookups and
// comparisons that do not keep the string.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
