package queue

import (
	"sort"
	"strings"
	"testing"
	"time"
)

func TestNewIDShape(t *testing.T) {
	at := time.Date(2026, 12, 1, 18, 0, 0, 123_000_000, time.UTC)
	id := NewID(at)
	if len(id) != IDLen {
		t.Fatalf("len(%q) = %d, want %d", id, len(id), IDLen)
	}
	if strings.Trim(id, idAlphabet) != "" {
		t.Fatalf("%q has characters outside %q", id, idAlphabet)
	}
	got, err := IDTime(id)
	if err != nil || !got.Equal(at) {
		t.Fatalf("IDTime(%q) = %v, %v; want %v", id, got, err, at)
	}
	if got, err := IDTime(strings.ToUpper(id)); err != nil || !got.Equal(at) {
		t.Fatalf("IDTime(upper) = %v, %v", got, err)
	}
	// 2026-12-01T18:00:00.123Z is 1796148000123 ms: ten base32 digits.
	if want := encodeID(1796148000123, 0, 0)[:10]; id[:10] != want {
		t.Fatalf("time part %q, want %q", id[:10], want)
	}
}

func TestEncodeIDKnown(t *testing.T) {
	cases := []struct {
		name   string
		ms     uint64
		hi     uint16
		lo     uint64
		expect string
	}{
		{"zero", 0, 0, 0, "00000000000000000000000000"},
		{"one", 0, 0, 1, "00000000000000000000000001"},
		{"largest", 1<<48 - 1, 0xffff, 1<<64 - 1, "7zzzzzzzzzzzzzzzzzzzzzzzzz"},
		// ULID's spec example time 1469918176385 encodes as 01ARYZ6S41.
		{"ulid spec time", 1469918176385, 0, 0, "01aryz6s410000000000000000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := encodeID(c.ms, c.hi, c.lo); got != c.expect {
				t.Fatalf("encodeID = %q, want %q", got, c.expect)
			}
		})
	}
}

func TestNewIDSortsByTime(t *testing.T) {
	base := time.Now()
	var ids []string
	for i := range 200 {
		// Several ids per millisecond, and times that move on.
		ids = append(ids, NewID(base.Add(time.Duration(i/4)*time.Millisecond)))
	}
	if !sort.StringsAreSorted(ids) {
		t.Fatalf("ids made in time order do not sort: %v", ids)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("id %q made twice", id)
		}
		seen[id] = true
	}
	earlier := NewID(base.Add(-time.Hour))
	if earlier >= ids[0] {
		t.Fatalf("id of an hour earlier %q sorts after %q", earlier, ids[0])
	}
}

func TestIDTimeRefuses(t *testing.T) {
	for name, id := range map[string]string{
		"short":         "01aryz6s41",
		"not base32":    "01aryz6s41000000000000000u",
		"first too big": "80000000000000000000000000",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := IDTime(id); err == nil {
				t.Fatalf("IDTime(%q) accepted it", id)
			}
		})
	}
}
