package config

import (
	"fmt"
	"strings"
)

// EnvResultCache sets the plugin's result cache on disk (the block results
// kept next to each store so a restarted process starts warm): "off", "on"
// (the default: the smaller of 64 MiB and 3% of the store) or a size such
// as 32MiB.
const EnvResultCache = "GF_PLUGIN_RESULT_CACHE"

// ParseResultCache reads a result cache setting: -1 for "off", 0 for "on"
// or "" (the engine's default budget), else the budget in bytes.
func ParseResultCache(s string) (int64, error) {
	switch t := strings.ToLower(strings.TrimSpace(s)); t {
	case "", "on", "auto", "true":
		return 0, nil
	case "off", "false", "0":
		return -1, nil
	}
	n, err := ParseByteSize(s)
	if err != nil {
		return 0, fmt.Errorf("want off, on or a size such as 32MiB: %w", err)
	}
	return n, nil
}
