package daemon

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relayq/relayq/spool"
)

// BenchmarkRunnerDrain measures the runner alone on a real spool with a
// relay that accepts at once: the spool-bound drain rate (lease, then
// delete, per message; fsync on). b.N messages are queued first.
func BenchmarkRunnerDrain(b *testing.B) {
	for _, workers := range []int{1, 8, 32} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "queue.db")
			sp, err := spool.Open(path, spool.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer sp.Close()
			var wg sync.WaitGroup
			ch := make(chan int)
			for w := 0; w < 32; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range ch {
						env := spool.Envelope{From: "s@example.com", Recipients: []spool.Recipient{{Addr: "r@example.net"}}}
						if _, err := sp.Submit(context.Background(), env, strings.NewReader(testBody)); err != nil {
							b.Error(err)
						}
					}
				}()
			}
			for i := 0; i < b.N; i++ {
				ch <- i
			}
			close(ch)
			wg.Wait()
			relay := &fakeRelay{}
			r := newRunner(openSpool{sp}, relay, runnerConfig{Workers: workers, Lease: time.Minute})
			b.ResetTimer()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r.run(ctx, false, time.Second) }()
			for {
				relay.mu.Lock()
				n := len(relay.calls)
				relay.mu.Unlock()
				if n >= b.N {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			b.StopTimer()
			cancel()
			<-done
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
