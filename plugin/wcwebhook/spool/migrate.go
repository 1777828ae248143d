package spool

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// The bbolt spool of earlier versions: one bucket, 8-byte big-endian
// sequence keys, the record as value.
var legacyBucket = []byte("deliveries")

// migrateBatchBytes bounds the values read from the bbolt file per commit.
const migrateBatchBytes = 4 << 20

// migrateLegacy appends the records of a bbolt spool in the directory to the
// log, in their order, syncs them, then deletes the bbolt file. The records
// get new sequence numbers. A crash before the deletion migrates them again
// on the next Open: duplicates, never a loss.
func (s *Spool) migrateLegacy() error {
	path := filepath.Join(s.dir, legacyFileName)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: s.opts.OpenTimeout, ReadOnly: true})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return fmt.Errorf("%w (gave up after %s)", errLocked, s.opts.OpenTimeout)
		}
		return err
	}
	defer db.Close()
	var after []byte // the last key migrated
	for {
		var values [][]byte
		size := 0
		err := db.View(func(tx *bolt.Tx) error {
			b := tx.Bucket(legacyBucket)
			if b == nil {
				return nil
			}
			c := b.Cursor()
			k, v := c.First()
			if after != nil {
				if k, v = c.Seek(after); k != nil && bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			for ; k != nil && size < migrateBatchBytes; k, v = c.Next() {
				if len(k) != 8 {
					continue
				}
				values = append(values, bytes.Clone(v))
				size += len(v)
				after = bytes.Clone(k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(values) == 0 {
			break
		}
		g := &commitGroup{values: values, notes: make([]any, len(values)), done: make(chan struct{})}
		s.commit(g, nil, nil, &aioSyncer{})
		if g.err != nil {
			return g.err
		}
		s.bytes.Add(int64(size + recHeaderSize*len(values)))
	}
	if err := db.Close(); err != nil {
		return err
	}
	if err := os.Remove(path); err != nil {
		return err
	}
	return syncDir(s.dir)
}
