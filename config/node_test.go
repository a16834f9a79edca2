package config

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"30": 30 * time.Second, "30s": 30 * time.Second, "15m": 15 * time.Minute,
		"4h": 4 * time.Hour, "1d": 24 * time.Hour, "1h30m": 90 * time.Minute, "0": 0} {
		if got, ok := parseDuration(in); !ok || got != want {
			t.Errorf("%s: %v %v", in, got, ok)
		}
	}
	for _, bad := range []string{"", "-1s", "4 hours", "1w", "d", "1.5d"} {
		if got, ok := parseDuration(bad); ok {
			t.Errorf("%q accepted as %v", bad, got)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]uint64{"1000": 1000, "64k": 64 << 10, "64K": 64 << 10, "500M": 500 << 20,
		"2G": 2 << 30, "1T": 1 << 40, "3GiB": 3 << 30, "10MB": 10 << 20} {
		if got, ok := parseBytes(in); !ok || got != want {
			t.Errorf("%s: %v %v", in, got, ok)
		}
	}
	for _, bad := range []string{"", "10X", "k", "-1", "1.5G", "99999999999999999999", "20000000T"} {
		if got, ok := parseBytes(bad); ok {
			t.Errorf("%q accepted as %d", bad, got)
		}
	}
}

func TestDidYouMean(t *testing.T) {
	keys := []string{"local_addrs", "remote_addrs", "children"}
	for in, want := range map[string]string{
		"remote_addr": `; did you mean "remote_addrs"?`,
		"chilren":     `; did you mean "children"?`,
		"mobike":      "; expected one of: children, local_addrs, remote_addrs",
	} {
		if got := didYouMean(in, keys); got != want {
			t.Errorf("%s: %q", in, got)
		}
	}
	if d := editDistance("kitten", "sitting"); d != 3 {
		t.Errorf("editDistance = %d", d)
	}
}
