package spool

import (
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// idAlphabet is Crockford's base32 alphabet; it is in ASCII order, so IDs
// compare like the numbers they encode.
const idAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// idLen is the length of a queue ID: 12 base32 digits, 60 bits of
// microseconds since 1970.
const idLen = 12

// String returns the ID as text.
func (id ID) String() string { return string(id) }

// Time returns the arrival time encoded in a valid ID (microsecond
// precision), or the zero time for an invalid one.
func (id ID) Time() time.Time {
	us, ok := decodeID(string(id))
	if !ok {
		return time.Time{}
	}
	return time.UnixMicro(int64(us))
}

// ParseID checks that s is a well-formed queue ID (it does not look it up).
// Lower-case input is accepted.
func ParseID(s string) (ID, error) {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	if _, ok := decodeID(string(b)); !ok {
		return "", fmt.Errorf("invalid queue ID %q: want %d characters of %s", s, idLen, idAlphabet)
	}
	return ID(b), nil
}

func encodeID(us uint64) ID {
	var b [idLen]byte
	for i := idLen - 1; i >= 0; i-- {
		b[i] = idAlphabet[us&31]
		us >>= 5
	}
	return ID(b[:])
}

func decodeID(s string) (uint64, bool) {
	if len(s) != idLen {
		return 0, false
	}
	var us uint64
	for i := 0; i < idLen; i++ {
		v := idValue(s[i])
		if v < 0 {
			return 0, false
		}
		us = us<<5 | uint64(v)
	}
	return us, true
}

func idValue(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'A' <= c && c <= 'Z':
		for i := 10; i < len(idAlphabet); i++ {
			if idAlphabet[i] == c {
				return i
			}
		}
	}
	return -1
}

// nextID hands out the ID for a message arriving at now, inside the write
// transaction that stores its record: strictly greater than every ID handed
// out before (meta "lastid"), even if the clock stepped back. It returns the
// ID and its arrival time.
func nextID(tx *bolt.Tx, now time.Time) (ID, time.Time, error) {
	meta := tx.Bucket(bucketMeta)
	us := uint64(max(now.UnixMicro(), 0))
	if v := meta.Get(keyLastID); len(v) == 8 {
		if last := binary.BigEndian.Uint64(v); us <= last {
			us = last + 1
		}
	}
	if us >= 1<<60 {
		return "", time.Time{}, fmt.Errorf("%w: queue ID space exhausted", ErrCorrupt)
	}
	if err := meta.Put(keyLastID, binary.BigEndian.AppendUint64(nil, us)); err != nil {
		return "", time.Time{}, err
	}
	return encodeID(us), time.UnixMicro(int64(us)), nil
}
