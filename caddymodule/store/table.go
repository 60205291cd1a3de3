package store

import "container/list"

// entryKind keeps rate-limit and claim keys apart without building
// strings on the request path.
type entryKind uint8

const (
	kindRate entryKind = iota + 1
	kindClaim
)

type tableKey struct {
	kind   entryKind
	source string
	key    string
}

// entry is one rate-limit bucket or one idempotency claim.
type entry struct {
	key     tableKey
	expires int64 // Unix microseconds

	tat int64 // rate: theoretical arrival time

	owner       string // claim
	fingerprint string
	resp        *Response // nil while in flight

	heapIndex int
	elem      *list.Element // position in write order
	size      int64         // footprint counted against the table's bytes
}

// entryOverhead approximates what an entry costs beyond its strings and
// stored answer: the struct, its map slot, list element and heap item.
const entryOverhead = 256

// footprint estimates the bytes the entry holds on to.
func (e *entry) footprint() int64 {
	n := entryOverhead + len(e.key.source) + len(e.key.key) + len(e.owner) + len(e.fingerprint)
	if e.resp != nil {
		n += len(e.resp.Body)
		for name, values := range e.resp.Header {
			n += len(name)
			for _, v := range values {
				n += len(v) + 16
			}
		}
	}
	return int64(n)
}

// table is a size-capped map whose entries expire. When full it drops
// expired entries first (soonest expiry at the top of a heap), then the
// least recently written one, so a flood of new keys cannot grow memory
// without bound. It is not safe for concurrent use; Memory locks it.
//
// Expiries that move later (every rate-limited event pushes its
// bucket's) are not re-sorted at once: the heap keeps the old, earlier
// time and the entry is re-sorted only if it reaches the top. That keeps
// the hot path free of heap work; an expiry only ever looks sooner than
// it is, so nothing live is taken for expired.
type table struct {
	max      int
	maxBytes int64 // 0: no byte budget
	bytes    int64
	entries  map[tableKey]*entry
	byTime   expiryHeap
	byWrite  *list.List // front: least recently written
}

func newTable(max int) *table {
	return &table{max: max, entries: make(map[tableKey]*entry), byWrite: list.New()}
}

// newBudgetTable is newTable with a byte budget as well: stored answers
// vary in size, so a count alone does not bound memory.
func newBudgetTable(max int, maxBytes int64) *table {
	t := newTable(max)
	t.maxBytes = maxBytes
	return t
}

// get returns the live entry for k, dropping it if it has expired.
func (t *table) get(k tableKey, now int64) *entry {
	e := t.entries[k]
	if e == nil {
		return nil
	}
	if e.expires < now {
		t.remove(e)
		return nil
	}
	return e
}

// put inserts e (making room first) or, when it is already present,
// records that it was just written and when it now expires.
func (t *table) put(e *entry, now int64) {
	size := e.footprint()
	if e.elem != nil {
		t.bytes += size - e.size
		e.size = size
		t.byWrite.MoveToBack(e.elem)
		if item := &t.byTime[e.heapIndex]; e.expires < item.at {
			item.at = e.expires
			t.byTime.up(e.heapIndex)
		}
		t.fitBudget(e)
		return
	}
	e.size = size
	t.makeRoom(now, size)
	t.entries[e.key] = e
	e.elem = t.byWrite.PushBack(e)
	t.byTime.push(heapItem{at: e.expires, e: e})
	t.bytes += size
}

// overBudget reports whether adding incoming bytes would pass the
// byte budget.
func (t *table) overBudget(incoming int64) bool {
	return t.maxBytes > 0 && t.bytes+incoming > t.maxBytes
}

// fitBudget drops the least recently written entries, other than keep,
// until the table is within its byte budget again.
func (t *table) fitBudget(keep *entry) {
	for t.overBudget(0) && t.byWrite.Len() > 1 {
		oldest := t.byWrite.Front().Value.(*entry)
		if oldest == keep {
			return
		}
		t.remove(oldest)
	}
}

func (t *table) makeRoom(now, incoming int64) {
	for len(t.byTime) > 0 && t.byTime[0].at < now {
		top := &t.byTime[0]
		if top.e.expires < now {
			t.remove(top.e)
			continue
		}
		top.at = top.e.expires // extended since it was sorted
		t.byTime.down(0)
	}
	for len(t.entries) > 0 && (len(t.entries) >= t.max || t.overBudget(incoming)) {
		t.remove(t.byWrite.Front().Value.(*entry))
	}
}

func (t *table) remove(e *entry) {
	t.bytes -= e.size
	delete(t.entries, e.key)
	t.byWrite.Remove(e.elem)
	e.elem = nil
	t.byTime.remove(e.heapIndex)
}

func (t *table) len() int { return len(t.entries) }

// heapItem keeps the sort key next to the pointer, so comparisons do
// not chase pointers across a large table.
type heapItem struct {
	at int64 // expiry when last sorted; never later than e.expires
	e  *entry
}

// expiryHeap is a binary min-heap of entries by expiry. It is written
// out rather than built on container/heap, whose interface would box
// every pushed item into an allocation.
type expiryHeap []heapItem

func (h *expiryHeap) push(item heapItem) {
	item.e.heapIndex = len(*h)
	*h = append(*h, item)
	h.up(len(*h) - 1)
}

func (h *expiryHeap) remove(i int) {
	last := len(*h) - 1
	(*h)[i].e.heapIndex = -1
	if i != last {
		h.set(i, (*h)[last])
	}
	(*h)[last] = heapItem{}
	*h = (*h)[:last]
	if i != last {
		h.down(i)
		h.up(i)
	}
}

func (h expiryHeap) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if h[parent].at <= h[i].at {
			return
		}
		h.swap(i, parent)
		i = parent
	}
}

func (h expiryHeap) down(i int) {
	for {
		least, left := i, 2*i+1
		if left < len(h) && h[left].at < h[least].at {
			least = left
		}
		if right := left + 1; right < len(h) && h[right].at < h[least].at {
			least = right
		}
		if least == i {
			return
		}
		h.swap(i, least)
		i = least
	}
}

func (h expiryHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].e.heapIndex = i
	h[j].e.heapIndex = j
}

func (h expiryHeap) set(i int, item heapItem) {
	h[i] = item
	item.e.heapIndex = i
}
