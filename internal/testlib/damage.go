package testlib

import (
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// DamageRecord overwrites the record of message id in the closed spool
// file at path with bytes that do not decode, as a damaged disk would
// leave it: the spool's ErrCorrupt path for that one message.
func DamageRecord(t testing.TB, path, id string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("msg")).Put([]byte(id), []byte("\x01{not json"))
	}); err != nil {
		t.Fatal(err)
	}
}
