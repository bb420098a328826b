package spool

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The crash test runs the test binary itself as a child (TestCrashChild,
// selected by crashChildEnv) that submits, leases, updates, defers, deletes
// and now and then compacts, and kills it with SIGKILL at a random moment.
// The child writes to a log, with one write(2) each, "start SEQ HASH" before
// a Submit, "ack SEQ ID HASH" after Submit returned, and "delivered ID" after
// Update marked every recipient delivered (and before Delete). After every
// kill the parent reopens the spool and checks that every acknowledged
// message is present byte for byte or was delivered, and that any other
// message is one whose Submit was in flight.
const (
	crashChildEnv   = "RELAYQ_SPOOL_CRASH_CHILD" // the directory of spool and log
	crashSeedEnv    = "RELAYQ_SPOOL_CRASH_SEED"
	crashRoundsEnv  = "RELAYQ_SPOOL_CRASH_ROUNDS" // default 200
	crashSubmitters = 3
	crashWorkers    = 3
)

func TestCrash(t *testing.T) {
	rounds := 200
	if v := os.Getenv(crashRoundsEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number", crashRoundsEnv, v)
		}
		rounds = n
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "queue.db")
	logPath := filepath.Join(dir, "log")
	known := map[ID]bool{} // messages seen in an earlier round
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 3))
	for round := 0; round < rounds; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, crashSeedEnv+"="+strconv.Itoa(round))
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		t0 := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ready := make(chan bool, 1)
		go func() {
			line, _ := bufio.NewReader(stdout).ReadString('\n')
			ready <- strings.HasPrefix(line, "ready")
			_, _ = io.Copy(io.Discard, stdout)
		}()
		select {
		case ok := <-ready:
			if !ok {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("round %d: child did not start: %s", round, stderr.String())
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("round %d: child not ready after 30s: %s", round, stderr.String())
		}
		t1 := time.Now()
		time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child ended by itself (%v): %s", round, err, stderr.String())
		}
		t2 := time.Now()
		verifyCrashRound(t, round, path, logPath, known)
		if os.Getenv("CRASH_TIMING") != "" {
			t.Logf("round %d: start %v run %v verify %v", round, t1.Sub(t0), t2.Sub(t1), time.Since(t2))
		}
	}
	t.Logf("%d rounds, %d messages seen in all", rounds, len(known))
}

type crashLog struct {
	started   map[int]string // seq -> body hash
	acked     map[ID]string  // id -> body hash
	ackedSeq  map[int]bool
	delivered map[ID]bool
}

func readCrashLog(t *testing.T, logPath string) crashLog {
	l := crashLog{started: map[int]string{}, acked: map[ID]string{}, ackedSeq: map[int]bool{}, delivered: map[ID]bool{}}
	data, err := os.ReadFile(logPath)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 3 && f[0] == "start":
			seq, _ := strconv.Atoi(f[1])
			l.started[seq] = f[2]
		case len(f) == 4 && f[0] == "ack":
			seq, _ := strconv.Atoi(f[1])
			l.acked[ID(f[2])] = f[3]
			l.ackedSeq[seq] = true
		case len(f) == 2 && f[0] == "delivered":
			l.delivered[ID(f[1])] = true
		}
	}
	return l
}

func verifyCrashRound(t *testing.T, round int, path, logPath string, known map[ID]bool) {
	t.Helper()
	log := readCrashLog(t, logPath)
	s, err := Open(path, Options{LockTimeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("round %d: reopen after kill: %v", round, err)
	}
	defer s.Close()
	present := map[ID]bool{}
	newUnacked := 0
	err = s.List(func(m *Message) error {
		present[m.ID] = true
		if known[m.ID] && round%10 != 0 {
			// Checked byte for byte when first seen and every tenth
			// round, to keep the rounds fast as the queue grows.
			return nil
		}
		r, err := s.OpenBody(m.ID)
		if err != nil {
			return err
		}
		h := sha256.New()
		var first [64]byte
		n, _ := io.ReadFull(r, first[:])
		h.Write(first[:n])
		if _, err := io.Copy(h, r); err != nil {
			return fmt.Errorf("body of %s: %w", m.ID, err)
		}
		_ = r.Close()
		sum := hex.EncodeToString(h.Sum(nil))
		if want, ok := log.acked[m.ID]; ok {
			if sum != want {
				t.Errorf("round %d: acknowledged %s: body hash %s, want %s", round, m.ID, sum, want)
			}
		} else {
			// Not acknowledged: must be a Submit that was in flight.
			var seq int
			if _, err := fmt.Sscanf(string(first[:n]), "Seq: %d\r\n", &seq); err != nil {
				t.Errorf("round %d: unacknowledged %s has no Seq header", round, m.ID)
			} else if log.ackedSeq[seq] {
				t.Errorf("round %d: %s duplicates acknowledged submit %d", round, m.ID, seq)
			} else if want, ok := log.started[seq]; !ok || want != sum {
				t.Errorf("round %d: unacknowledged %s (seq %d) was never started with this body", round, m.ID, seq)
			}
			if !known[m.ID] {
				newUnacked++
			}
		}
		known[m.ID] = true
		return nil
	})
	if err != nil {
		t.Fatalf("round %d: list: %v", round, err)
	}
	if newUnacked > crashSubmitters {
		t.Errorf("round %d: %d unacknowledged messages appeared, at most %d submits were in flight", round, newUnacked, crashSubmitters)
	}
	for id := range log.acked {
		if !present[id] && !log.delivered[id] {
			t.Errorf("round %d: acknowledged %s lost (not present, never delivered)", round, id)
		}
	}
	checkInvariants(t, s)
	if t.Failed() {
		t.FailNow()
	}
}

// TestCrashChild is the child side of TestCrash; it does nothing unless
// started by it.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("helper process for TestCrash")
	}
	seed, _ := strconv.Atoi(os.Getenv(crashSeedEnv))
	s, err := Open(filepath.Join(dir, "queue.db"), Options{LockTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.OpenFile(filepath.Join(dir, "log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	logLine := func(format string, a ...any) {
		if _, err := logf.WriteString(fmt.Sprintf(format, a...)); err != nil {
			panic(err)
		}
	}
	fmt.Println("ready")
	var seqs atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < crashSubmitters; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(seed), uint64(w)))
			for {
				seq := seed*1_000_000 + int(seqs.Add(1))
				body := crashBody(rng, seq)
				sum := sha256.Sum256(body)
				hash := hex.EncodeToString(sum[:])
				logLine("start %d %s\n", seq, hash)
				id, err := s.Submit(context.Background(), env("crash@example.org", "a@example.com", "b@example.com"), bytes.NewReader(body))
				if err != nil {
					panic(err)
				}
				logLine("ack %d %s %s\n", seq, id, hash)
			}
		}()
	}
	for w := 0; w < crashWorkers; w++ {
		wg.Add(1)
		go crashWorker(s, seed, w, logLine, &wg)
	}
	if seed%4 == 0 {
		time.Sleep(time.Duration(seed%50) * time.Millisecond)
		if err := s.Compact(); err != nil {
			panic(err)
		}
	}
	wg.Wait() // never: the parent kills us
}

// crashWorker leases and delivers (mostly), defers or holds and releases.
func crashWorker(s *Spool, seed, w int, logLine func(string, ...any), wg *sync.WaitGroup) {
	defer wg.Done()
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(100+w)))
	for {
		got, err := s.LeaseDue(time.Now(), 5, 200*time.Millisecond)
		if err != nil {
			panic(err)
		}
		for _, m := range got {
			switch p := rng.IntN(20); {
			case p < 16:
				if err := s.Update(m.ID, []Result{{Index: 0, State: Delivered}, {Index: 1, State: Delivered}}); err != nil {
					panic(err)
				}
				logLine("delivered %s\n", m.ID)
				if err := s.Delete(m.ID); err != nil {
					panic(err)
				}
			case p < 19:
				if err := s.Update(m.ID, []Result{{Index: 0, State: Delivered}, {Index: 1, State: Pending, Reply: Reply{Code: 451, Enhanced: "4.3.0", Text: "later"}}}); err != nil {
					panic(err)
				}
				if err := s.Defer(m.ID, time.Now().Add(time.Duration(rng.IntN(100))*time.Millisecond), "451 later"); err != nil {
					panic(err)
				}
			default:
				if err := s.Hold(m.ID); err != nil {
					panic(err)
				}
				if err := s.Release(m.ID); err != nil {
					panic(err)
				}
			}
		}
		if len(got) == 0 {
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// crashBody makes a body that starts with its sequence number: mostly
// small, sometimes a few chunks, sometimes several transactions.
func crashBody(rng *rand.Rand, seq int) []byte {
	var n int
	switch p := rng.IntN(100); {
	case p < 80:
		n = 100 + rng.IntN(4000)
	case p < 95:
		n = chunkSize + rng.IntN(4*chunkSize)
	default:
		n = chunkSize*chunksPerTx + rng.IntN(2*chunkSize*chunksPerTx)
	}
	b := make([]byte, 0, n+32)
	b = fmt.Appendf(b, "Seq: %d\r\n", seq)
	for len(b) < n {
		b = append(b, byte('a'+rng.IntN(26)))
	}
	return b
}
