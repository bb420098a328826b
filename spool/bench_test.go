package spool

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BenchmarkSubmit measures Submit of a 2 KB message with 1, 8 and 64
// concurrent submitters, fsync on (the spool has no other mode). msgs/s is
// the figure to compare: group commit should give 64 submitters far more
// than one.
func BenchmarkSubmit(b *testing.B) {
	body := bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n"), 32) // 2048 bytes
	for _, p := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("submitters=%d", p), func(b *testing.B) {
			s, err := Open(filepath.Join(b.TempDir(), "queue.db"), Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			e := env("bench@example.org", "rcpt@example.com")
			var left atomic.Int64
			left.Store(int64(b.N))
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for w := 0; w < p; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for left.Add(-1) >= 0 {
						if _, err := s.Submit(context.Background(), e, bytes.NewReader(body)); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
		})
	}
}

// BenchmarkDueLookup measures finding due work in queues of 1,000, 10,000
// and 100,000 messages: NextDue (one read) and LeaseDue of 10 messages
// (a write with fsync). Both read only the head of the due index, so the
// time should not grow with the queue.
func BenchmarkDueLookup(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		s, c := openTest(b)
		addBulk(b, s, n, c.Now().Add(-time.Hour))
		b.Run(fmt.Sprintf("queue=%d/NextDue", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, ok, err := s.NextDue(); err != nil || !ok {
					b.Fatal(ok, err)
				}
			}
		})
		b.Run(fmt.Sprintf("queue=%d/FindDue10", n), func(b *testing.B) {
			// LeaseDue's lookup without its commit (whose fsync dominates
			// and is noisy on a shared disk): the first 10 due entries and
			// their records.
			limit := binary.BigEndian.AppendUint64(nil, dueNanos(c.Now().Add(time.Hour)))
			for i := 0; i < b.N; i++ {
				err := s.view(func(tx *bolt.Tx) error {
					keys, err := s.dueKeys(tx, limit, 10)
					if err != nil {
						return err
					}
					if len(keys) != 10 {
						return fmt.Errorf("%d due", len(keys))
					}
					for _, k := range keys {
						if _, err := s.getRecord(tx, ID(k[8:])); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
		now := c.Now() // kept across the runs of the sub-benchmark
		b.Run(fmt.Sprintf("queue=%d/LeaseDue10", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				// Leased messages are due again a nanosecond later, so the
				// queue keeps its length and the due set cycles.
				now = now.Add(time.Second)
				got, err := s.LeaseDue(now, 10, time.Nanosecond)
				if err != nil || len(got) != 10 {
					b.Fatal(len(got), err)
				}
			}
		})
		_ = s.Close()
	}
}

// BenchmarkBodyMemory submits and reads back a 1 MB, 10 MB and 100 MB body
// in a fresh child process per run (VmHWM is per process) and reports the
// child's peak Go heap (runtime/metrics, sampled every millisecond) and its
// peak RSS (VmHWM from /proc/self/status, which also counts the spool
// file's pages that bbolt's read-only mmap touched while reading back).
func BenchmarkBodyMemory(b *testing.B) {
	for _, mb := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("size=%dMB", mb), func(b *testing.B) {
			var last memResult
			for i := 0; i < b.N; i++ {
				last = runMemChild(b, mb)
			}
			b.ReportMetric(float64(last.HeapPeak)/(1<<20), "peak-heap-MB")
			b.ReportMetric(float64(last.HeapBase)/(1<<20), "base-heap-MB")
			b.ReportMetric(float64(last.VmHWM)/(1<<20), "VmHWM-MB")
			b.ReportMetric(float64(last.VmHWMBase)/(1<<20), "base-VmHWM-MB")
			b.ReportMetric(float64(last.VmHWMSubmit)/(1<<20), "submit-VmHWM-MB")
			b.ReportMetric(float64(last.AnonPeak)/(1<<20), "peak-RssAnon-MB")
			b.ReportMetric(float64(last.FilePeak)/(1<<20), "peak-RssFile-MB")
			b.ReportMetric(float64(mb)/last.SubmitSec, "submit-MB/s")
			b.ReportMetric(float64(mb)/last.ReadSec, "read-MB/s")
		})
	}
}

const memChildEnv = "RELAYQ_SPOOL_MEM_CHILD" // body size in MB

type memResult struct {
	HeapBase, HeapPeak uint64 // bytes of heap objects: before, peak during
	VmHWMBase, VmHWM   uint64 // peak RSS bytes: before, at the end
	AnonPeak, FilePeak uint64 // peak RssAnon and RssFile bytes sampled during
	VmHWMSubmit        uint64 // peak RSS bytes after Submit, before reading back
	SubmitSec, ReadSec float64
}

func runMemChild(b *testing.B, mb int) memResult {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestMemChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), memChildEnv+"="+strconv.Itoa(mb), "TMPDIR="+b.TempDir())
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("memory child: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if js, ok := strings.CutPrefix(line, "memresult "); ok {
			var r memResult
			if err := json.Unmarshal([]byte(js), &r); err != nil {
				b.Fatal(err)
			}
			return r
		}
	}
	b.Fatalf("memory child printed no result:\n%s", out)
	return memResult{}
}

// TestMemChild is the child side of BenchmarkBodyMemory; it does nothing
// unless started by it.
func TestMemChild(t *testing.T) {
	v := os.Getenv(memChildEnv)
	if v == "" {
		t.Skip("helper process for BenchmarkBodyMemory")
	}
	mb, err := strconv.Atoi(v)
	if err != nil {
		t.Fatal(err)
	}
	size := int64(mb) << 20
	s, err := Open(filepath.Join(t.TempDir(), "queue.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	runtime.GC()
	var r memResult
	r.HeapBase = heapObjects()
	r.VmHWMBase = procStatus(t, "VmHWM")

	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		n := 0
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			if h := heapObjects(); h > peak.Load() {
				peak.Store(h)
			}
			if n++; n%10 == 0 { // reading /proc costs more than the heap metric
				r.AnonPeak = max(r.AnonPeak, procStatus(t, "RssAnon"))
				r.FilePeak = max(r.FilePeak, procStatus(t, "RssFile"))
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()

	src := &genReader{left: size, rng: rand.New(rand.NewPCG(uint64(mb), 1))}
	want := sha256.New()
	start := time.Now()
	id, err := s.Submit(context.Background(), env("big@example.org", "rcpt@example.com"), io.TeeReader(src, want))
	if err != nil {
		t.Fatal(err)
	}
	r.SubmitSec = time.Since(start).Seconds()
	r.VmHWMSubmit = procStatus(t, "VmHWM")
	start = time.Now()
	body, err := s.OpenBody(id)
	if err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	n, err := io.Copy(got, body)
	if err != nil || n != size {
		t.Fatalf("read back %d bytes, %v", n, err)
	}
	_ = body.Close()
	r.ReadSec = time.Since(start).Seconds()
	close(stop)
	<-sampled
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatal("body read back differs")
	}
	r.HeapPeak = peak.Load()
	r.VmHWM = procStatus(t, "VmHWM")
	js, _ := json.Marshal(r)
	fmt.Printf("memresult %s\n", js)
}

// genReader produces left pseudo-random bytes without holding them.
type genReader struct {
	left int64
	rng  *rand.Rand
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.left {
		p = p[:g.left]
	}
	for i := 0; i+8 <= len(p); i += 8 {
		v := g.rng.Uint64()
		for j := 0; j < 8; j++ {
			p[i+j] = byte(v >> (8 * j))
		}
	}
	for i := len(p) &^ 7; i < len(p); i++ {
		p[i] = byte(g.rng.Uint32())
	}
	g.left -= int64(len(p))
	return len(p), nil
}

var heapSample = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}

// heapObjects returns the bytes in heap objects (live and not yet swept).
func heapObjects() uint64 {
	s := make([]metrics.Sample, 1)
	copy(s, heapSample)
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// procStatus returns a "kB" field of /proc/self/status in bytes (VmHWM:
// peak resident set; RssAnon, RssFile: resident anonymous and file pages).
func procStatus(t *testing.T, field string) uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// BenchmarkOpenSubmitClose is what a daemonless sendmail does per message:
// open the spool (a queue of 10,000 messages), submit 2 KB, close.
func BenchmarkOpenSubmitClose(b *testing.B) {
	path := filepath.Join(b.TempDir(), "queue.db")
	s, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	addBulk(b, s, 10000, time.Now())
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	body := bytes.Repeat([]byte("x"), 2048)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := Open(path, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.Submit(context.Background(), env("a@b", "c@d"), bytes.NewReader(body)); err != nil {
			b.Fatal(err)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStats counts a queue of 100,000 messages (Stats reads every
// record; it is a user command, not on the delivery path).
func BenchmarkStats(b *testing.B) {
	s, c := openTest(b)
	addBulk(b, s, 100000, c.Now())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		st, err := s.Stats()
		if err != nil || st.Count != 100000 {
			b.Fatal(st, err)
		}
	}
}

// BenchmarkRetryKindsNone is what each daemonless delivery run pays at its
// start to find mail that waited for the configuration (daemon.RunOnce,
// RetryKinds of daemon.KindNoRelay) when there is none, in queues of 1,000 and
// 10,000 messages: one scan of every record, no write.
func BenchmarkRetryKindsNone(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		s, c := openTest(b)
		addBulk(b, s, n, c.Now())
		b.Run(fmt.Sprintf("queue=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if got, err := s.RetryKinds([]string{"norelay"}, "x"); err != nil || got != 0 {
					b.Fatal(got, err)
				}
			}
		})
		_ = s.Close()
	}
}
