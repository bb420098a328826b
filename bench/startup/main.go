// Command startup measures process start-up: each command given is run
// RUNS times (no shell, standard input from /dev/null or -stdin FILE) and
// its wall time and minor page faults (pages touched, from wait4's rusage)
// are reported as medians, beside the first command as the reference
// (normally bench/noop, an empty static Go binary). Peak RSS comes from a
// separate pass of 21 runs under /usr/bin/time -f %M: a child that Go
// starts shares its parent's memory until exec (vfork), and the kernel
// counts that in the child's peak, so wait4's figure would be the
// parent's; time(1) forks from a small C process.
//
//	startup [-runs 200] [-stdin FILE] [-env K=V]... NAME=CMD [ARGS...] -- NAME=CMD ...
//
// The commands run interleaved (one of each per round), so that a change
// in the machine's load hits all of them alike.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"syscall"
	"time"
)

type envList []string

func (e *envList) String() string     { return strings.Join(*e, ",") }
func (e *envList) Set(v string) error { *e = append(*e, v); return nil }

type target struct {
	name string
	argv []string
	wall []float64 // ms
	flt  []float64 // minor faults
	rss  []float64 // KiB, from rssPass
}

func main() {
	runs := flag.Int("runs", 200, "runs per command")
	stdin := flag.String("stdin", "", "file given as standard input to every run (default /dev/null)")
	var env envList
	flag.Var(&env, "env", "K=V added to the environment of every run (repeatable)")
	flag.Parse()
	var ts []*target
	var cur *target
	for _, a := range flag.Args() {
		if a == "--" {
			cur = nil
			continue
		}
		if cur == nil {
			name, cmd, ok := strings.Cut(a, "=")
			if !ok || name == "" || cmd == "" {
				fmt.Fprintf(os.Stderr, "startup: %q: want NAME=CMD\n", a)
				os.Exit(64)
			}
			cur = &target{name: name, argv: []string{cmd}}
			ts = append(ts, cur)
			continue
		}
		cur.argv = append(cur.argv, a)
	}
	if len(ts) == 0 {
		fmt.Fprintln(os.Stderr, "usage: startup [-runs N] [-stdin FILE] [-env K=V] NAME=CMD [ARGS...] [-- NAME=CMD ...]")
		os.Exit(64)
	}
	environ := append(os.Environ(), env...)
	for i := 0; i < *runs+5; i++ { // 5 warm-up rounds, not counted
		for _, t := range ts {
			w, f, err := runOnce(t.argv, *stdin, environ)
			if err != nil {
				fmt.Fprintf(os.Stderr, "startup: %s: %v\n", t.name, err)
				os.Exit(70)
			}
			if i >= 5 {
				t.wall = append(t.wall, w)
				t.flt = append(t.flt, f)
			}
		}
	}
	for _, t := range ts {
		t.rss = rssPass(t.argv, *stdin, environ)
	}
	ref := median(ts[0].wall)
	fmt.Printf("%-22s %10s %8s %8s %10s %12s\n", "command", "median_ms", "p90_ms", "x_ref", "minflt", "maxrss_MiB")
	for _, t := range ts {
		m := median(t.wall)
		rss := "-"
		if len(t.rss) > 0 {
			rss = fmt.Sprintf("%.2f", median(t.rss)/1024)
		}
		fmt.Printf("%-22s %10.3f %8.3f %8.2f %10.0f %12s\n", t.name, m, pct(t.wall, 0.9), m/ref, median(t.flt), rss)
	}
}

// rssPass runs argv 21 times under /usr/bin/time -f %M and returns the
// peak RSS of each run (KiB); nil when /usr/bin/time is missing.
func rssPass(argv []string, stdin string, env []string) []float64 {
	if _, err := os.Stat("/usr/bin/time"); err != nil {
		return nil
	}
	var out []float64
	for i := 0; i < 21; i++ {
		f, err := os.CreateTemp("", "startup-rss")
		if err != nil {
			return nil
		}
		name := f.Name()
		f.Close()
		cmd := exec.Command("/usr/bin/time", append([]string{"-o", name, "-f", "%M"}, argv...)...)
		cmd.Env = env
		if stdin != "" {
			in, oerr := os.Open(stdin)
			if oerr != nil {
				os.Remove(name)
				return nil
			}
			cmd.Stdin = in
			err = cmd.Run()
			in.Close()
		} else {
			err = cmd.Run()
		}
		b, rerr := os.ReadFile(name)
		os.Remove(name)
		if err != nil || rerr != nil {
			return nil
		}
		var kb float64
		if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%g", &kb); err == nil {
			out = append(out, kb)
		}
	}
	return out
}

// runOnce runs argv once and returns its wall time (ms) and minor faults.
// A non-zero exit is an error: a failing command measures nothing.
func runOnce(argv []string, stdin string, env []string) (float64, float64, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	if stdin != "" {
		f, err := os.Open(stdin)
		if err != nil {
			return 0, 0, err
		}
		defer f.Close()
		cmd.Stdin = f
	}
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, 0, fmt.Errorf("%v: %w", argv, err)
	}
	wall := float64(time.Since(t0).Microseconds()) / 1000
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return wall, float64(ru.Minflt), nil
}

func median(v []float64) float64 { return pct(v, 0.5) }

func pct(v []float64, p float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[int(p*float64(len(s)-1)+0.5)]
}
