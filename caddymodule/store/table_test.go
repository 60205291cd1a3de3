package store

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
)

func TestTableEviction(t *testing.T) {
	put := func(tab *table, key string, expires, now int64) {
		tab.put(&entry{key: tableKey{kindClaim, "s", key}, expires: expires}, now)
	}
	tests := []struct {
		name string
		fill func(tab *table)
		now  int64
		want []string // keys left after inserting "new" at now
	}{
		{
			name: "expired entries go first",
			fill: func(tab *table) {
				put(tab, "old-long", 1000, 0)
				put(tab, "short", 10, 0)
				put(tab, "young-long", 1000, 0)
			},
			now:  20,
			want: []string{"new", "old-long", "young-long"},
		},
		{
			name: "then the least recently written",
			fill: func(tab *table) {
				put(tab, "a", 1000, 0)
				put(tab, "b", 1000, 0)
				put(tab, "c", 1000, 0)
			},
			now:  20,
			want: []string{"b", "c", "new"},
		},
		{
			name: "a write refreshes recency",
			fill: func(tab *table) {
				put(tab, "a", 1000, 0)
				put(tab, "b", 1000, 0)
				put(tab, "c", 1000, 0)
				e := tab.get(tableKey{kindClaim, "s", "a"}, 1)
				e.expires = 2000
				tab.put(e, 1)
			},
			now:  20,
			want: []string{"a", "c", "new"},
		},
		{
			name: "an extended expiry is not taken for expired",
			fill: func(tab *table) {
				put(tab, "a", 10, 0)
				put(tab, "b", 1000, 0)
				put(tab, "c", 1000, 0)
				e := tab.get(tableKey{kindClaim, "s", "a"}, 1)
				e.expires = 2000
				tab.put(e, 1)
			},
			now:  20,
			want: []string{"a", "c", "new"},
		},
		{
			name: "a shortened expiry is swept first",
			fill: func(tab *table) {
				put(tab, "a", 1000, 0)
				put(tab, "b", 1000, 0)
				put(tab, "c", 1000, 0)
				e := tab.get(tableKey{kindClaim, "s", "c"}, 1)
				e.expires = 10
				tab.put(e, 1)
			},
			now:  20,
			want: []string{"a", "b", "new"},
		},
		{
			name: "every expired entry is swept at once",
			fill: func(tab *table) {
				put(tab, "x", 5, 0)
				put(tab, "live", 1000, 0)
				put(tab, "y", 6, 0)
			},
			now:  20,
			want: []string{"live", "new"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab := newTable(3)
			tt.fill(tab)
			put(tab, "new", 1000, tt.now)
			var got []string
			for k := range tab.entries {
				got = append(got, k.key)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("entries %v, want %v", got, tt.want)
			}
			if tab.byWrite.Len() != len(tab.entries) || len(tab.byTime) != len(tab.entries) {
				t.Errorf("index sizes list=%d heap=%d map=%d disagree", tab.byWrite.Len(), len(tab.byTime), len(tab.entries))
			}
		})
	}
}

func TestTableGetDropsExpired(t *testing.T) {
	tab := newTable(10)
	k := tableKey{kindRate, "s", "k"}
	tab.put(&entry{key: k, expires: 100}, 0)
	if tab.get(k, 100) == nil {
		t.Fatal("entry gone at its expiry instant; Redis keeps it until then")
	}
	if tab.get(k, 101) != nil {
		t.Fatal("expired entry returned")
	}
	if tab.len() != 0 || len(tab.byTime) != 0 || tab.byWrite.Len() != 0 {
		t.Errorf("expired entry not removed from every index")
	}
}

// TestTableInvariants runs random inserts, rewrites and lookups and
// checks after each that the map, the write list and the heap agree and
// that the heap is ordered.
func TestTableInvariants(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tab := newTable(50)
	now := int64(0)
	for step := range 5000 {
		now += rng.Int64N(3)
		k := tableKey{kindClaim, "s", strconv.Itoa(rng.IntN(120))}
		switch e := tab.get(k, now); {
		case e == nil:
			tab.put(&entry{key: k, expires: now + rng.Int64N(100)}, now)
		case rng.IntN(2) == 0:
			e.expires = now + rng.Int64N(100) // later or sooner
			tab.put(e, now)
		}
		if err := checkTable(tab); err != "" {
			t.Fatalf("step %d: %s", step, err)
		}
	}
}

func checkTable(tab *table) string {
	if len(tab.entries) > tab.max {
		return fmt.Sprintf("%d entries over cap %d", len(tab.entries), tab.max)
	}
	var bytes int64
	for _, e := range tab.entries {
		bytes += e.size
	}
	if bytes != tab.bytes {
		return fmt.Sprintf("byte count %d, entries hold %d", tab.bytes, bytes)
	}
	if tab.overBudget(0) && len(tab.entries) > 1 {
		return fmt.Sprintf("%d bytes over budget %d", tab.bytes, tab.maxBytes)
	}
	if tab.byWrite.Len() != len(tab.entries) || len(tab.byTime) != len(tab.entries) {
		return fmt.Sprintf("sizes: list %d heap %d map %d", tab.byWrite.Len(), len(tab.byTime), len(tab.entries))
	}
	for i, item := range tab.byTime {
		if item.e.heapIndex != i {
			return fmt.Sprintf("heap[%d] thinks it is at %d", i, item.e.heapIndex)
		}
		if item.at > item.e.expires {
			return fmt.Sprintf("heap[%d] sorted later (%d) than it expires (%d)", i, item.at, item.e.expires)
		}
		if i > 0 && tab.byTime[(i-1)/2].at > item.at {
			return fmt.Sprintf("heap[%d] smaller than its parent", i)
		}
		if tab.entries[item.e.key] != item.e {
			return fmt.Sprintf("heap[%d] not in the map", i)
		}
	}
	return ""
}

// TestTableByteBudget stores answers of growing size in a table whose
// count cap is never reached: the byte budget alone must evict, oldest
// first, and the count must stay exact when an entry grows in place.
func TestTableByteBudget(t *testing.T) {
	const budget = 64 << 10
	tab := newBudgetTable(1_000_000, budget)
	body := make([]byte, 4<<10)
	for i := range 100 {
		e := &entry{key: tableKey{kindClaim, "s", strconv.Itoa(i)}, expires: 1 << 40}
		tab.put(e, 0)
		e.resp = &Response{Status: 200, Body: body} // completed: grows in place
		tab.put(e, 0)
		if err := checkTable(tab); err != "" {
			t.Fatalf("after %d answers: %s", i+1, err)
		}
	}
	if tab.bytes > budget || tab.len() < 10 || tab.len() > 16 {
		t.Fatalf("%d entries, %d bytes; want about budget/4 KiB entries within %d bytes", tab.len(), tab.bytes, budget)
	}
	if tab.get(tableKey{kindClaim, "s", "99"}, 0) == nil || tab.get(tableKey{kindClaim, "s", "0"}, 0) != nil {
		t.Fatal("the budget evicted the newest answer, or kept the oldest")
	}
}
