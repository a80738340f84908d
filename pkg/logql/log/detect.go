package log

import (
	"strings"
	"time"
)

// Level is a normalised log level.
type Level uint8

// Levels, as Loki's level detection and Grafana's log panel name them.
const (
	LevelUnknown Level = iota
	LevelTrace
	LevelDebug
	LevelInfo
	LevelWarn
	LevelError
	LevelCritical
	numLevels
)

var levelNames = [numLevels]string{"unknown", "trace", "debug", "info", "warn", "error", "critical"}

// String returns the lowercase name used as the level label's value.
func (l Level) String() string {
	if l < numLevels {
		return levelNames[l]
	}
	return "unknown"
}

// detectScanLimit bounds how far into a line level detection looks for a
// bare level word: levels sit near the start, and scanning a 256 KiB line
// for a word would cost more than the rest of ingestion.
const detectScanLimit = 160

// levelWord maps a word to a level when it is a level name written in
// upper, lower or title case ("ERROR", "error", "Error"), not mixed.
func levelWord(w string) (Level, bool) {
	if len(w) < 3 || len(w) > 9 {
		return LevelUnknown, false
	}
	var buf [9]byte
	uppers := 0
	for i := 0; i < len(w); i++ {
		c := w[i]
		switch {
		case c >= 'a' && c <= 'z':
			buf[i] = c
		case c >= 'A' && c <= 'Z':
			buf[i] = c + 'a' - 'A'
			uppers++
		default:
			return LevelUnknown, false
		}
	}
	// all upper, all lower, or title case: "ERROR", "error", "Error"
	if uppers != 0 && uppers != len(w) && !(uppers == 1 && w[0] >= 'A' && w[0] <= 'Z') {
		return LevelUnknown, false
	}
	switch string(buf[:len(w)]) {
	case "info", "notice":
		return LevelInfo, true
	case "warn", "warning":
		return LevelWarn, true
	case "error", "err":
		return LevelError, true
	case "debug", "dbg":
		return LevelDebug, true
	case "trace":
		return LevelTrace, true
	case "critical", "crit", "fatal", "panic", "emerg", "emergency", "alert":
		return LevelCritical, true
	}
	return LevelUnknown, false
}

// IsLevelWord reports whether w is a level name (info, WARNING, Error, ...)
// as DetectLevel reads one: written in upper, lower or title case.
func IsLevelWord(w string) bool {
	_, ok := levelWord(w)
	return ok
}

// isUpperWord reports whether w has no lower-case letter.
func isUpperWord(w string) bool {
	for i := 0; i < len(w); i++ {
		if w[i] >= 'a' && w[i] <= 'z' {
			return false
		}
	}
	return true
}

// commonLevelWord accepts, in lower or title case, the level names loggers
// write that way ("info", "Warning"); rarer names ("alert", "notice",
// "panic") are taken in free text only when upper case, as words like
// "alert" are common in prose after a timestamp.
func commonLevelWord(w string) bool {
	for _, c := range [...]string{"info", "warn", "warning", "error", "debug", "trace", "critical", "fatal"} {
		if strings.EqualFold(w, c) {
			return true
		}
	}
	return false
}

// skipANSI returns i advanced past any ANSI escape sequences starting at i.
func skipANSI(s string, i int) int {
	for i < len(s) && s[i] == 0x1b {
		j := i + 1
		if j < len(s) && s[j] == '[' {
			j++
			for j < len(s) && (s[j] < 0x40 || s[j] > 0x7e) {
				j++
			}
			if j < len(s) {
				j++
			}
		} else if j < len(s) {
			j++
		}
		i = j
	}
	return i
}

// StripANSI removes ANSI escape sequences; it allocates only when there are some.
// It is the ingest side's decolorize (the decolorize and multiline stages):
// ESC plus one byte, or ESC [ up to a final byte; `| decolorize` at query
// time (NewDecolorizeStage) strips Loki's wider set (CSI U+009B, OSC titles).
func StripANSI(s string) string {
	if strings.IndexByte(s, 0x1b) < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		if s[i] == 0x1b {
			i = skipANSI(s, i)
			continue
		}
		j := i
		for j < len(s) && s[j] != 0x1b {
			j++
		}
		b.WriteString(s[i:j])
		i = j
	}
	return b.String()
}

// nextWord returns the next run of letters at or after i, skipping ANSI
// codes and the given separator bytes first; it reports where it ends.
func wordAt(s string, i int) (string, int) {
	i = skipANSI(s, i)
	j := i
	for j < len(s) && isLetter(s[j]) {
		j++
	}
	return s[i:j], j
}

func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }

// DetectLevel finds the level of a log line written in one of the common
// shapes: [INFO], uvicorn's "INFO:", "2024-12-17 14:30:52 INFO", Python
// logging's "... - name - INFO - ...", loguru's "... | INFO | ...",
// level=info, "level":"info", with ANSI colours anywhere around them. It
// allocates nothing.
func DetectLevel(line string) Level {
	i := skipSpaceANSI(line, 0)
	if i < len(line) && line[i] == '[' {
		w, j := wordAt(line, i+1)
		j = skipANSI(line, j)
		if l, ok := levelWord(w); ok && j < len(line) && line[j] == ']' {
			return l
		}
		// "[2024-12-17 14:30:52] ERROR ..." or "[SYSTEM] ...": go on after it
		if k := strings.IndexByte(line[i:min(len(line), i+64)], ']'); k > 0 {
			i = skipSpaceANSI(line, i+k+1)
		}
	}
	// a leading level word: "INFO:     127.0.0.1 ...", "ERROR run.sh: ...",
	// "error: ..."; but "Error connecting to db" is prose, not a level
	if w, j := wordAt(line, i); w != "" {
		if l, ok := levelWord(w); ok {
			j = skipANSI(line, j)
			if j == len(line) || line[j] == ':' || (isUpperWord(w) && (line[j] == ' ' || line[j] == '\t' || line[j] == ']' || line[j] == '|')) {
				return l
			}
		}
	}
	// after a leading timestamp, the level is among the next few words
	if _, n, _ := parseLeadingTime(line[i:], time.UTC, time.Time{}); n > 0 {
		j := i + n
		for words := 0; words < 4 && j < len(line); words++ {
			for j < len(line) && (line[j] == ' ' || line[j] == '\t' || line[j] == '-' || line[j] == '|' || line[j] == '[' || line[j] == ']' || line[j] == 0x1b) {
				j = skipANSI(line, j)
				if j < len(line) && line[j] != 0x1b && (line[j] == ' ' || line[j] == '\t' || line[j] == '-' || line[j] == '|' || line[j] == '[' || line[j] == ']') {
					j++
				}
			}
			start := j
			for j < len(line) && line[j] != ' ' && line[j] != '\t' && line[j] != 0x1b && line[j] != ']' && line[j] != '|' {
				j++
			}
			w := line[start:j]
			w = strings.TrimSuffix(w, ":")
			if l, ok := levelWord(w); ok && (isUpperWord(w) || commonLevelWord(w)) {
				return l
			}
			if j == start {
				break
			}
		}
	}
	// level=info, "level":"info", also severity and lvl
	if l, ok := levelByKey(line); ok {
		return l
	}
	// last resort: an upper-case level word near the start ("CRITICAL run.sh")
	limit := min(len(line), detectScanLimit)
	for j := i; j < limit; {
		for j < limit && !isLetter(line[j]) {
			j++
		}
		start := j
		for j < len(line) && isLetter(line[j]) {
			j++
		}
		w := line[start:j]
		if len(w) >= 4 && w[0] >= 'A' && w[0] <= 'Z' && w[1] >= 'A' && w[1] <= 'Z' {
			if l, ok := levelWord(w); ok && (start == 0 || !isDigit(line[start-1])) && (j == len(line) || !isDigit(line[j])) {
				return l
			}
		}
	}
	return LevelUnknown
}

func skipSpaceANSI(s string, i int) int {
	for i < len(s) {
		if s[i] == ' ' || s[i] == '\t' {
			i++
			continue
		}
		if s[i] == 0x1b {
			i = skipANSI(s, i)
			continue
		}
		break
	}
	return i
}

// levelByKey finds level=, lvl=, severity= (logfmt) or "level": (JSON) keys.
func levelByKey(line string) (Level, bool) {
	off := 0
	for {
		k := strings.Index(line[off:], "level")
		if k < 0 {
			break
		}
		k += off
		if l, ok := levelValueAt(line, k, k+len("level")); ok {
			return l, true
		}
		off = k + len("level")
	}
	for _, key := range [...]string{"lvl", "severity"} {
		if k := strings.Index(line, key); k >= 0 {
			if l, ok := levelValueAt(line, k, k+len(key)); ok {
				return l, true
			}
		}
	}
	return LevelUnknown, false
}

// levelValueAt reads the value of a key found at [ks, ke).
func levelValueAt(line string, ks, ke int) (Level, bool) {
	quoted := ks > 0 && line[ks-1] == '"'
	if !quoted && ks > 0 && line[ks-1] != ' ' && line[ks-1] != '\t' && line[ks-1] != '{' && line[ks-1] != ',' {
		return LevelUnknown, false
	}
	j := ke
	if quoted {
		if j >= len(line) || line[j] != '"' {
			return LevelUnknown, false
		}
		j++
		for j < len(line) && line[j] == ' ' {
			j++
		}
		if j >= len(line) || line[j] != ':' {
			return LevelUnknown, false
		}
		j++
		for j < len(line) && line[j] == ' ' {
			j++
		}
	} else {
		if j >= len(line) || line[j] != '=' {
			return LevelUnknown, false
		}
		j++
	}
	if j < len(line) && line[j] == '"' {
		j++
	}
	start := j
	for j < len(line) && isLetter(line[j]) {
		j++
	}
	return levelWord(line[start:j])
}

// parseLeadingTime parses a timestamp at the start of s (after optional
// ANSI codes): ISO 8601 / RFC 3339 with '.' or ',' fractions and zones,
// "YYYY-MM-DD hh:mm:ss[,.]fff", "YYYY/MM/DD hh:mm:ss", syslog "Dec 17
// 14:30:52", or epoch seconds/ms/µs/ns. loc applies when no zone is written;
// ref supplies the year of syslog stamps. n is the length consumed (0: no
// timestamp). malformed reports a stamp-shaped prefix with impossible
// fields (month 13), which callers count as a parse failure.
func parseLeadingTime(s string, loc *time.Location, ref time.Time) (t time.Time, n int, malformed bool) {
	if len(s) >= 19 && isDigit(s[0]) && isDigit(s[1]) && isDigit(s[2]) && isDigit(s[3]) && (s[4] == '-' || s[4] == '/') {
		return parseISO(s, loc)
	}
	if len(s) >= 15 && s[0] >= 'A' && s[0] <= 'S' && s[3] == ' ' {
		return parseSyslog(s, loc, ref)
	}
	if len(s) >= 10 && isDigit(s[0]) {
		return parseEpoch(s)
	}
	return time.Time{}, 0, false
}

func num2(s string, i int) (int, bool) {
	if i+2 > len(s) || !isDigit(s[i]) || !isDigit(s[i+1]) {
		return 0, false
	}
	return int(s[i]-'0')*10 + int(s[i+1]-'0'), true
}

// clockAt parses "hh:mm:ss" at s[at:], then a fraction of a second when one
// of the bytes in seps and a digit follow; end is the index after it all.
func clockAt(s string, at int, seps string) (hh, mm, ss, nsec, end int, ok bool) {
	hh, ok1 := num2(s, at)
	mm, ok2 := num2(s, at+3)
	ss, ok3 := num2(s, at+6)
	if !ok1 || !ok2 || !ok3 || s[at+2] != ':' || s[at+5] != ':' {
		return 0, 0, 0, 0, 0, false
	}
	i := at + 8
	if i+1 < len(s) && strings.IndexByte(seps, s[i]) >= 0 && isDigit(s[i+1]) {
		i++
		scale := 100000000
		for i < len(s) && isDigit(s[i]) {
			nsec += int(s[i]-'0') * scale
			scale /= 10
			i++
		}
	}
	return hh, mm, ss, nsec, i, true
}

func parseISO(s string, loc *time.Location) (time.Time, int, bool) {
	year := int(s[0]-'0')*1000 + int(s[1]-'0')*100 + int(s[2]-'0')*10 + int(s[3]-'0')
	sep := s[4]
	mon, ok1 := num2(s, 5)
	day, ok2 := num2(s, 8)
	if !ok1 || !ok2 || s[7] != sep || (s[10] != 'T' && s[10] != ' ' && s[10] != 't') {
		return time.Time{}, 0, false
	}
	hh, mm, ss, nsec, i, ok := clockAt(s, 11, ".,")
	if !ok {
		return time.Time{}, 0, false
	}
	zone := loc
	switch {
	case i < len(s) && (s[i] == 'Z' || s[i] == 'z'):
		zone = time.UTC
		i++
	case i+5 < len(s) && s[i] == ' ' && (s[i+1] == '+' || s[i+1] == '-') && isDigit(s[i+2]) && isDigit(s[i+3]) && isDigit(s[i+4]) && isDigit(s[i+5]):
		// Go's time.String: "2024-12-17 14:30:52.123 +0800 CST"
		i++
		fallthrough
	case i+2 < len(s) && (s[i] == '+' || s[i] == '-') && isDigit(s[i+1]):
		zh, ok := num2(s, i+1)
		if !ok {
			return time.Time{}, 0, true
		}
		j := i + 3
		zm := 0
		if j < len(s) && s[j] == ':' {
			j++
		}
		if v, ok := num2(s, j); ok {
			zm = v
			j += 2
		}
		if zh > 14 || zm > 59 {
			return time.Time{}, 0, true
		}
		off := zh*3600 + zm*60
		if s[i] == '-' {
			off = -off
		}
		zone = fixedZone(off)
		i = j
	case i+3 < len(s) && s[i] == ' ' && s[i+1] == 'U' && s[i+2] == 'T' && s[i+3] == 'C' && (i+4 == len(s) || !isLetter(s[i+4])):
		zone = time.UTC
		i += 4
	}
	if mon < 1 || mon > 12 || day < 1 || day > daysIn(mon, year) || hh > 23 || mm > 59 || ss > 60 {
		return time.Time{}, 0, true
	}
	if ss == 60 { // a leap second: keep it in its minute
		ss, nsec = 59, 999999999
	}
	return time.Date(year, time.Month(mon), day, hh, mm, ss, nsec, zone), i, false
}

// fixedZone avoids allocating a location for the common zones.
func fixedZone(off int) *time.Location {
	if off == 0 {
		return time.UTC
	}
	if z, ok := commonZones[off]; ok {
		return z
	}
	return time.FixedZone("", off)
}

var commonZones = func() map[int]*time.Location {
	m := map[int]*time.Location{}
	for h := -12; h <= 14; h++ {
		m[h*3600] = time.FixedZone("", h*3600)
	}
	for _, off := range []int{19800, 20700, 34200, 12600, 16200} {
		m[off] = time.FixedZone("", off)
	}
	return m
}()

func daysIn(m, y int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

var monthAbbr = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

func parseSyslog(s string, loc *time.Location, ref time.Time) (time.Time, int, bool) {
	mon := 0
	for k, a := range monthAbbr {
		if s[:3] == a {
			mon = k + 1
			break
		}
	}
	if mon == 0 {
		return time.Time{}, 0, false
	}
	var day int
	switch {
	case s[4] == ' ' && isDigit(s[5]):
		day = int(s[5] - '0')
	case isDigit(s[4]) && isDigit(s[5]):
		day = int(s[4]-'0')*10 + int(s[5]-'0')
	default:
		return time.Time{}, 0, false
	}
	if s[6] != ' ' {
		return time.Time{}, 0, false
	}
	hh, mm, ss, nsec, i, ok := clockAt(s, 7, ".")
	if !ok {
		return time.Time{}, 0, false
	}
	if ref.IsZero() {
		ref = time.Now()
	}
	year := ref.Year()
	if day < 1 || day > daysIn(mon, year) || hh > 23 || mm > 59 || ss > 59 {
		return time.Time{}, 0, true
	}
	t := time.Date(year, time.Month(mon), day, hh, mm, ss, nsec, loc)
	// syslog stamps have no year: a stamp far in the future is last year's
	if t.Sub(ref) > 24*time.Hour {
		t = t.AddDate(-1, 0, 0)
	}
	return t, i, false
}

// parseEpoch reads 10 (s), 13 (ms), 16 (µs) or 19 (ns) digits, seconds with
// an optional fraction, followed by a non-digit or the end.
func parseEpoch(s string) (time.Time, int, bool) {
	i := 0
	var v int64
	for i < len(s) && i < 20 && isDigit(s[i]) {
		v = v*10 + int64(s[i]-'0')
		i++
	}
	if i < len(s) && isDigit(s[i]) {
		return time.Time{}, 0, false
	}
	switch i {
	case 10:
		nsec := int64(0)
		if i+1 < len(s) && s[i] == '.' && isDigit(s[i+1]) {
			i++
			scale := int64(100000000)
			for i < len(s) && isDigit(s[i]) {
				nsec += int64(s[i]-'0') * scale
				scale /= 10
				i++
			}
		}
		if i < len(s) && s[i] != ' ' && s[i] != '\t' && s[i] != ',' && s[i] != ']' {
			return time.Time{}, 0, false
		}
		return time.Unix(v, nsec).UTC(), i, false
	case 13, 16, 19:
		if i < len(s) && s[i] != ' ' && s[i] != '\t' && s[i] != ',' && s[i] != ']' {
			return time.Time{}, 0, false
		}
		switch i {
		case 13:
			return time.UnixMilli(v).UTC(), i, false
		case 16:
			return time.UnixMicro(v).UTC(), i, false
		}
		return time.Unix(0, v).UTC(), i, false
	}
	return time.Time{}, 0, false
}

// DetectTime finds the timestamp a line starts with, also after a bracketed
// level ("[INFO] 2024-..."), inside leading brackets ("[2024-...]"), after a
// leading ts=/time= key, and as a JSON line's ts/time/timestamp field near its
// start. loc applies to stamps without a zone; ref (the read time) gives
// syslog stamps their year. found is false when the line has no timestamp;
// malformed is true when it has one with impossible fields.
func DetectTime(line string, loc *time.Location, ref time.Time) (t time.Time, found, malformed bool) {
	i := skipSpaceANSI(line, 0)
	for tries := 0; tries < 3 && i < len(line); tries++ {
		if t, n, bad := parseLeadingTime(line[i:], loc, ref); n > 0 || bad {
			return t, n > 0, bad
		}
		switch line[i] {
		case '[':
			// "[2024-12-17 ...]" or "[INFO] 2024-12-17 ...": try inside, then after
			if t, n, bad := parseLeadingTime(line[skipANSI(line, i+1):], loc, ref); n > 0 || bad {
				return t, n > 0, bad
			}
			k := strings.IndexByte(line[i:min(len(line), i+40)], ']')
			if k < 0 {
				return time.Time{}, false, false
			}
			i = skipSpaceANSI(line, i+k+1)
		case '{':
			return jsonTime(line, loc, ref)
		default:
			for _, key := range [...]string{"ts=", "time=", "timestamp="} {
				if strings.HasPrefix(line[i:], key) {
					j := i + len(key)
					if j < len(line) && line[j] == '"' {
						j++
					}
					t, n, bad := parseLeadingTime(line[j:], loc, ref)
					return t, n > 0, bad
				}
			}
			return time.Time{}, false, false
		}
	}
	return time.Time{}, false, false
}

// jsonTimeScanLimit bounds the search for a JSON time field: loggers put it
// first or close to it.
const jsonTimeScanLimit = 256

func jsonTime(line string, loc *time.Location, ref time.Time) (time.Time, bool, bool) {
	head := line[:min(len(line), jsonTimeScanLimit)]
	for _, key := range [...]string{`"ts":`, `"time":`, `"timestamp":`, `"@timestamp":`, `"asctime":`} {
		k := strings.Index(head, key)
		if k < 0 {
			continue
		}
		j := k + len(key)
		for j < len(line) && line[j] == ' ' {
			j++
		}
		if j < len(line) && line[j] == '"' {
			j++
		}
		t, n, bad := parseLeadingTime(line[j:], loc, ref)
		return t, n > 0, bad
	}
	return time.Time{}, false, false
}
