package spool

import (
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// trimEvery is how many committed writes pass between two trims of the
// mapping (about 128 messages delivered: a lease and a result each). The
// scans of every record (List, Stats, RetryKinds: at the daemon's start
// and on reload) trim when they end.
const trimEvery = 256

// trimMapped drops the spool file's pages from this process's mapping
// (madvise MADV_DONTNEED on bbolt's read-only, shared mmap). bbolt reads
// every value through the mmap, so each page a message ever used stays
// mapped and counted in the daemon's RSS: a drained 10,000-message
// backlog left 55 MB of file pages resident. The pages stay in the page
// cache, and the next access maps them again (a minor fault): nothing is
// read from disk, and nothing can be lost, as the mapping is never
// written to (bbolt writes with pwrite). It runs inside a read
// transaction, which holds bbolt's mmap lock: the mapping cannot be
// replaced meanwhile, and tx.Size() (the pages in use) lies within it.
func (s *Spool) trimMapped() {
	_ = s.view(func(tx *bolt.Tx) error {
		data, size := s.db.Info().Data, tx.Size()
		if data == 0 || size <= 0 {
			return nil
		}
		_, _, _ = unix.Syscall(unix.SYS_MADVISE, data, uintptr(size), unix.MADV_DONTNEED)
		return nil
	})
}
