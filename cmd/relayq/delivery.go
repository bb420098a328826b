package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"

	"github.com/relayq/relayq/config"
	"github.com/relayq/relayq/daemon"
	"github.com/relayq/relayq/maillog"
	"github.com/relayq/relayq/smarthost"
)

// delivery is relayq serve's Deliverer: the delivery client that
// daemonOptions built, behind a SIGHUP that can replace it. When the
// client could not be built at start (a credentials file or sender relay
// map that is unsafe or broken: configProblem defers every message), or
// when the credentials file did not exist (every relay without a
// credential is deferred), Reload builds it again from the same
// configuration: a SIGHUP after the file is fixed or written leaves that
// state, and the daemon then retries the mail deferred for it at once. A
// bad value in the env file is read at start only (envProblem): Reload
// logs that a restart is needed. Once a rebuilt client is in force, its
// own reloaders (credentials, relay map, idle sessions) run on each
// SIGHUP. delivery is safe for concurrent use.
type delivery struct {
	cfg *config.Config
	log *maillog.Logger

	mu      sync.Mutex
	cur     daemon.Deliverer
	reload  []daemon.Reloader // of a client built by Reload
	rebuild bool              // Reload builds the client again
	env     error             // the env file problem, if that is the state
}

// newDelivery wraps the Deliverer daemonOptions built (built, or its
// error err).
func newDelivery(cfg *config.Config, log *maillog.Logger, built daemon.Deliverer, err error) *delivery {
	d := &delivery{cfg: cfg, log: log, cur: built}
	switch {
	case errors.As(err, new(envProblem)):
		d.cur, d.env = configProblem(log, err, fixHint(err)), err
	case err != nil:
		d.cur, d.rebuild = configProblem(log, err, fixHint(err)), true
	default:
		d.rebuild = credentialsMissing(cfg)
	}
	return d
}

// credentialsMissing reports whether delivery runs without the
// credentials file because it does not exist.
func credentialsMissing(cfg *config.Config) bool {
	if cfg.AuthInfo == "" || strings.TrimSpace(cfg.RelayHost) == "" {
		return false
	}
	_, err := os.Stat(cfg.AuthInfo)
	return errors.Is(err, fs.ErrNotExist)
}

// Deliver is the current client's.
func (d *delivery) Deliver(ctx context.Context, m *smarthost.Message) (smarthost.Outcome, error) {
	d.mu.Lock()
	cur := d.cur
	d.mu.Unlock()
	return cur.Deliver(ctx, m)
}

// String names the reload for the daemon's log.
func (d *delivery) String() string {
	return "delivery settings (a relay client broken at start is rebuilt)"
}

// Reload is the SIGHUP step described on delivery. Its error (the
// configuration is still unusable) leaves the current state in force; the
// daemon logs it.
func (d *delivery) Reload() error {
	d.mu.Lock()
	rebuild, env, extra := d.rebuild, d.env, d.reload
	d.mu.Unlock()
	if env != nil {
		d.log.Warn("SIGHUP does not read the env file again: mail waits until relayq serve is restarted", "error", env)
		return nil
	}
	if !rebuild {
		var errs []error
		for _, r := range extra {
			if err := r.Reload(); err != nil {
				errs = append(errs, fmt.Errorf("%T: %w", r, err))
			}
		}
		return errors.Join(errs...)
	}
	o, rl, err := daemonOptions(d.cfg, d.log)
	if err != nil {
		return fmt.Errorf("the delivery configuration is still unusable (mail waits): %w", err)
	}
	missing := credentialsMissing(d.cfg)
	d.mu.Lock()
	old := d.cur
	d.cur, d.reload, d.rebuild = o.Deliverer, rl, missing
	d.mu.Unlock()
	if c, ok := old.(interface{ Close() error }); ok {
		_ = c.Close()
	}
	if !missing {
		d.log.Info("delivery configuration reloaded: the configuration error or missing credentials file is cleared", "authinfo", d.cfg.AuthInfo)
	}
	return nil
}

// Close closes the current client.
func (d *delivery) Close() error {
	d.mu.Lock()
	cur := d.cur
	d.mu.Unlock()
	if c, ok := cur.(interface{ Close() error }); ok {
		return c.Close()
	}
	return nil
}
