package queue

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"time"
)

// IDLen is the length of a delivery id.
const IDLen = 26

// idAlphabet is Crockford's base32 in lowercase: ids read well in URLs
// and logs, and lowercase letters sort after digits as uppercase ones
// do, so the text order of ids is the order of their times.
const idAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

// lastID is the id made last in this process: an id made in the same
// millisecond is the last one plus one, so that ids made by one process
// sort in the order they were made (as ULID's monotonic mode does).
var lastID struct {
	sync.Mutex
	ms       uint64
	hi       uint16 // the 80 random bits: hi 16 …
	lo       uint64 // … and lo 64
	occupied bool
}

// NewID returns a delivery id for an event received at t: 26
// characters of Crockford base32, lowercase, holding 48 bits of t's
// Unix milliseconds and then 80 bits from crypto/rand (a ULID). Ids sort
// by t to the millisecond; ids of one millisecond made by one process
// sort in the order they were made.
func NewID(t time.Time) string {
	ms := uint64(t.UnixMilli()) & (1<<48 - 1)
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand does not fail on the platforms Go supports.
		panic(fmt.Sprintf("queue: new id: %v", err))
	}
	hi, lo := binary.BigEndian.Uint16(b[:2]), binary.BigEndian.Uint64(b[2:])

	lastID.Lock()
	if lastID.occupied && ms == lastID.ms {
		hi, lo = lastID.hi, lastID.lo+1
		if lo == 0 {
			hi++ // 2^80 ids in one millisecond do not happen
		}
	}
	lastID.ms, lastID.hi, lastID.lo, lastID.occupied = ms, hi, lo, true
	lastID.Unlock()

	return encodeID(ms, hi, lo)
}

// encodeID writes the 128 bits (ms:48, hi:16, lo:64) as 26 base32
// digits, the first holding the top 3 bits.
func encodeID(ms uint64, hi uint16, lo uint64) string {
	top := ms<<16 | uint64(hi) // the high 64 bits
	var out [IDLen]byte
	for i := IDLen - 1; i >= 0; i-- {
		out[i] = idAlphabet[lo&31]
		lo = lo>>5 | top<<59
		top >>= 5
	}
	return string(out[:])
}

// IDTime returns the time, to the millisecond, that an id made by NewID
// holds. It accepts either case.
func IDTime(id string) (time.Time, error) {
	if len(id) != IDLen {
		return time.Time{}, fmt.Errorf("queue: id %q: want %d characters", id, IDLen)
	}
	var ms uint64
	for i := range IDLen {
		d := strings.IndexByte(idAlphabet, lower(id[i]))
		if d < 0 || (i == 0 && d > 7) {
			return time.Time{}, fmt.Errorf("queue: id %q: not base32", id)
		}
		if i < 10 {
			ms = ms<<5 | uint64(d)
		}
	}
	// The first digit holds 3 bits and the next nine 45: the 48 of the
	// time.
	return time.UnixMilli(int64(ms)), nil
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
