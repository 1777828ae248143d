package spool

import (
	"sync"
	"testing"
)

// BenchmarkAppendConsume: 32 concurrent appenders of 2.5 KB records, one
// reader removing what it read (the ack: spooled steady state).
func BenchmarkAppendConsume(b *testing.B) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	stop := make(chan struct{})
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		var last uint64
		for {
			recs, err := s.ReadAfter(last, 64)
			if err != nil {
				return
			}
			if len(recs) == 0 {
				select {
				case <-s.Notify():
					continue
				case <-stop:
					return
				}
			}
			for _, r := range recs {
				_ = s.Remove(r.Seq)
			}
			last = recs[len(recs)-1].Seq
		}
	}()
	b.SetBytes(2500)
	b.ResetTimer()
	var wg sync.WaitGroup
	per := b.N/32 + 1
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range per {
				if _, err := s.Append(make([]byte, 2500), nil); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	close(stop)
	<-readerDone
}
