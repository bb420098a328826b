package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/relayq/relayq/control"
)

const healthcheckUsage = `usage: relayq healthcheck [-timeout DURATION]

Asks the running daemon (relayq serve) on its control socket
(RELAYQ_CONTROL_SOCKET) whether it is up, accepts mail and can read its
spool, for container health checks and Kubernetes probes in an image
without a shell. Prints "ok" and exits 0 when it is; otherwise prints one
line saying why and exits 69: no daemon answers, it does not answer within
the timeout (default 3s), it is stopping (draining), or its spool failed.
It never opens the spool itself. Exit 78: the configuration cannot be
read.
`

// runHealthcheck is `relayq healthcheck`.
func runHealthcheck(s stdio, args []string) int {
	fl := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fl.SetOutput(s.err)
	fl.Usage = func() {}
	timeout := fl.Duration("timeout", 3*time.Second, "how long to wait for the daemon's answer")
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(s.out, healthcheckUsage)
			return exOK
		}
		fmt.Fprint(s.err, healthcheckUsage)
		return exUsage
	}
	if fl.NArg() != 0 || *timeout <= 0 {
		fmt.Fprint(s.err, healthcheckUsage)
		return exUsage
	}
	cfg, code := loadConfig(s)
	if code != exOK {
		return code
	}
	c := &control.Client{Socket: cfg.ControlSocket, Timeout: *timeout}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	h, err := c.Health(ctx)
	if err != nil {
		fmt.Fprintf(s.err, "relayq healthcheck: unhealthy: %v\n", err)
		return exUnavail
	}
	if h.Queue != nil {
		fmt.Fprintf(s.out, "ok (%d queued)\n", *h.Queue)
	} else {
		fmt.Fprintln(s.out, "ok")
	}
	return exOK
}
