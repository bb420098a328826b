package soak

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relayq/relayq/spool"
)

// vmRSS reads VmRSS (kB) of pid from /proc.
func vmRSS(t testing.TB, pid int) int { return procStatus(t, pid, "VmRSS") }

// procStatus reads one kB field of /proc/pid/status: VmRSS, RssAnon (the
// heap and stacks) or RssFile (file pages mapped: the binary and bbolt's
// mmap of the spool).
func procStatus(t testing.TB, pid int, field string) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatal(err)
			}
			return kb
		}
	}
	t.Fatal("no " + field + " in /proc/pid/status")
	return 0
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// BenchmarkIdleRSS starts `relayq serve` (SMTP listener, submission
// socket, control socket and /metrics all on), lets it sit idle for 3 s
// with an empty queue and reads VmRSS; five runs, the median is reported.
// Target: under 20 MB.
func BenchmarkIdleRSS(b *testing.B) {
	bin := relayqBin(b)
	sk := newSink(b)
	var rss, anon []float64
	for i := 0; i < 5; i++ {
		d := newDaemon(b, bin, sk.addr, "RELAYQ_METRICS_LISTEN="+freePort(b))
		d.start()
		time.Sleep(3 * time.Second)
		rss = append(rss, float64(vmRSS(b, d.pid()))/1024)
		anon = append(anon, float64(procStatus(b, d.pid(), "RssAnon"))/1024)
		d.terminate()
	}
	b.ReportMetric(median(rss), "MB-idle-RSS")
	fmt.Printf("BENCH idle RSS of relayq serve (5 runs, MB): %.1f median; runs %v; anonymous %v\n", median(rss), fmtList(rss), fmtList(anon))
}

// BenchmarkDrain fills a spool with 10,000 2 KB messages without a daemon,
// starts `relayq serve` against the loopback sink and measures the time
// until the sink has them all (from process start); three runs, the median
// rate is reported.
func BenchmarkDrain(b *testing.B) {
	const n = 10000
	bin := relayqBin(b)
	var rates []float64
	var peak, anon []float64
	for run := 0; run < 3; run++ {
		sk := newSink(b)
		d := newDaemon(b, bin, sk.addr)
		fill(b, d.spool(), n)
		start := time.Now()
		d.start()
		var maxRSS, maxAnon int
		for {
			got, _ := sk.counts()
			if r := vmRSS(b, d.pid()); r > maxRSS {
				maxRSS = r
			}
			if r := procStatus(b, d.pid(), "RssAnon"); r > maxAnon {
				maxAnon = r
			}
			if got >= n {
				break
			}
			if time.Since(start) > 5*time.Minute {
				b.Fatalf("drained %d of %d in 5 min", got, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
		el := time.Since(start)
		rates = append(rates, float64(n)/el.Seconds())
		peak = append(peak, float64(maxRSS)/1024)
		anon = append(anon, float64(maxAnon)/1024)
		d.terminate()
		sk.stop()
	}
	b.ReportMetric(median(rates), "msgs/s")
	fmt.Printf("BENCH drain of a %d-message backlog to a loopback sink (3 runs): %.0f msgs/s median; runs %v; peak RSS MB %v (anonymous: heap and stacks %v; the rest is file pages: binary, spool mmap)\n",
		n, median(rates), fmtList(rates), fmtList(peak), fmtList(anon))
}

// fill submits n messages straight into the spool (32 at a time, so that
// the spool's group commit is used).
func fill(b testing.TB, path string, n int) {
	sp, err := spool.Open(path, spool.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer sp.Close()
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				env := spool.Envelope{From: "bench@soak.test", Recipients: []spool.Recipient{{Addr: "sink@example.net"}}}
				body := fmt.Sprintf("From: bench@soak.test\r\nTo: sink@example.net\r\nSubject: drain %d\r\nX-Soak-Seq: %d\r\nX-Soak-Try: 1\r\n\r\n%s", i, i, body2k)
				if _, err := sp.Submit(context.Background(), env, strings.NewReader(body)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	for i := 1; i <= n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}

func fmtList(xs []float64) string {
	var s []string
	for _, x := range xs {
		s = append(s, strconv.FormatFloat(x, 'f', 1, 64))
	}
	return "[" + strings.Join(s, " ") + "]"
}
