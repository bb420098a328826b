package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/relayq/relayq/spool"
)

// Client runs queue commands through the daemon's control socket, or on
// the spool file directly when no daemon answers. The zero value is not
// useful; set Socket and SpoolPath.
type Client struct {
	Socket      string        // the daemon's control socket
	SpoolPath   string        // the spool file, for the direct route
	LockTimeout time.Duration // bounded lock wait on the direct route; 0 = spool's default
	Kick        func()        // called after a direct Flush or Release (start a queue run); may be nil
	// Timeout bounds the wait for the daemon's answer (for List: for the
	// first byte); 0 means DefaultTimeout. Compact is not bounded by it.
	Timeout time.Duration
}

// DefaultTimeout is Client's default wait for the daemon.
const DefaultTimeout = 30 * time.Second

// errNoDaemon: nothing listens on the control socket.
var errNoDaemon = errors.New("no daemon on the control socket")

func (c *Client) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

func (c *Client) httpClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			conn, err := d.DialContext(ctx, "unix", c.Socket)
			if err != nil && (errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOTDIR)) {
				return nil, fmt.Errorf("%w: %w", errNoDaemon, err)
			}
			return conn, err
		},
	}}
}

// call sends one request; out receives the JSON answer. It returns an error
// wrapping errNoDaemon when nobody listens.
func (c *Client) call(ctx context.Context, method, path string, bounded bool, out any) error {
	if c.Socket == "" {
		return errNoDaemon
	}
	if bounded {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout())
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://relayq"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return c.transportError(err)
	}
	defer resp.Body.Close()
	return decodeAnswer(resp, out)
}

func (c *Client) transportError(err error) error {
	if errors.Is(err, errNoDaemon) {
		return errNoDaemon
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		// A stopped, deadlocked or overloaded daemon.
		return fmt.Errorf("the daemon does not answer on %s within %s: %w", c.Socket, c.timeout(), context.DeadlineExceeded)
	}
	return fmt.Errorf("control socket %s: %w", c.Socket, err)
}

func decodeAnswer(resp *http.Response, out any) error {
	body := io.LimitReader(resp.Body, 16<<20)
	if resp.StatusCode != http.StatusOK {
		var e errorBody
		if err := json.NewDecoder(body).Decode(&e); err != nil || e.Error == "" {
			return fmt.Errorf("daemon: HTTP %s", resp.Status)
		}
		return errorOf(e.Kind, e.Error)
	}
	if err := json.NewDecoder(body).Decode(out); err != nil {
		return fmt.Errorf("daemon: bad answer: %w", err)
	}
	return nil
}

// direct opens the spool for one operation. With readOnly, a spool file
// that does not exist is not created: fn is not called and ok is false.
func (c *Client) direct(readOnly bool, fn func(*spool.Spool) error) (ok bool, err error) {
	if c.SpoolPath == "" {
		return false, fmt.Errorf("no daemon answers on %s and no spool path is configured", c.Socket)
	}
	if readOnly {
		if _, err := os.Stat(c.SpoolPath); errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
	}
	s, err := spool.Open(c.SpoolPath, spool.Options{LockTimeout: c.LockTimeout})
	if err != nil {
		if errors.Is(err, spool.ErrLocked) {
			return false, fmt.Errorf("%w (control socket %s): %w", ErrNoDaemon, c.Socket, err)
		}
		return false, err
	}
	defer s.Close()
	return true, fn(s)
}

// List calls fn for every queued message in arrival order. fn's error
// stops the walk and is returned.
func (c *Client) List(ctx context.Context, fn func(*spool.Message) error) error {
	err := c.listRemote(ctx, fn)
	if !errors.Is(err, errNoDaemon) {
		return err
	}
	_, err = c.direct(true, func(s *spool.Spool) error { return s.List(fn) })
	return err
}

func (c *Client) listRemote(ctx context.Context, fn func(*spool.Message) error) error {
	if c.Socket == "" {
		return errNoDaemon
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Bound the wait for the answer's start, not the whole (streamed) list.
	timer := time.AfterFunc(c.timeout(), cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://relayq/v1/queue", nil)
	if err != nil {
		return err
	}
	resp, err := c.httpClient().Do(req)
	timer.Stop()
	if err != nil {
		return c.transportError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return decodeAnswer(resp, nil)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var damaged []error
	for sc.Scan() {
		var l listLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return fmt.Errorf("daemon: bad list line: %w", err)
		}
		switch {
		case l.Message != nil:
			if err := fn(l.Message); err != nil {
				return err
			}
		case l.Damaged != nil:
			damaged = append(damaged, &spool.DamagedError{ID: l.Damaged.ID, Err: fmt.Errorf("%w: %s", spool.ErrCorrupt, l.Damaged.Error)})
		case l.Error != "":
			return errors.Join(append(damaged, errorOf(l.Kind, l.Error))...)
		case l.End:
			return errors.Join(damaged...)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("daemon: list: %w", err)
	}
	return errors.New("daemon: list ended early (daemon stopped?)")
}

// Show returns one message's record and header section.
func (c *Client) Show(ctx context.Context, id spool.ID) (*Detail, error) {
	var d Detail
	err := c.call(ctx, http.MethodGet, "/v1/queue/"+string(id), true, &d)
	if !errors.Is(err, errNoDaemon) {
		if err != nil {
			return nil, err
		}
		return &d, nil
	}
	var out *Detail
	ok, err := c.direct(true, func(s *spool.Spool) error {
		var err error
		out, err = detail(s, id)
		return err
	})
	if err == nil && !ok {
		err = fmt.Errorf("%s: %w", id, spool.ErrNotFound)
	}
	return out, err
}

// Hold puts a message on hold.
func (c *Client) Hold(ctx context.Context, id spool.ID) error {
	return c.change(ctx, http.MethodPost, "/v1/queue/"+string(id)+"/hold", id, false, func(s *spool.Spool) error { return s.Hold(id) })
}

// Release takes a message off hold (and kicks delivery on the direct
// route).
func (c *Client) Release(ctx context.Context, id spool.ID) error {
	return c.change(ctx, http.MethodPost, "/v1/queue/"+string(id)+"/release", id, true, func(s *spool.Spool) error { return s.Release(id) })
}

// Delete removes a message from the queue.
func (c *Client) Delete(ctx context.Context, id spool.ID) error {
	return c.change(ctx, http.MethodDelete, "/v1/queue/"+string(id), id, false, func(s *spool.Spool) error { return s.Delete(id) })
}

func (c *Client) change(ctx context.Context, method, path string, id spool.ID, kick bool, fn func(*spool.Spool) error) error {
	var ok okBody
	err := c.call(ctx, method, path, true, &ok)
	if !errors.Is(err, errNoDaemon) {
		return err
	}
	opened, err := c.direct(true, fn)
	if err == nil && !opened {
		return fmt.Errorf("%s: %w", id, spool.ErrNotFound)
	}
	if err == nil && kick && c.Kick != nil {
		c.Kick()
	}
	return err
}

// Attempt asks the daemon for the first delivery attempt of id, waiting up
// to wait for it (POST /v1/queue/{id}/attempt; sendmail -odi). Without a
// daemon it is an error: the caller runs the queue itself instead.
func (c *Client) Attempt(ctx context.Context, id spool.ID, wait time.Duration) (*AttemptAnswer, error) {
	ctx, cancel := context.WithTimeout(ctx, wait+c.timeout())
	defer cancel()
	var a AttemptAnswer
	err := c.call(ctx, http.MethodPost, "/v1/queue/"+string(id)+"/attempt?wait="+wait.String(), false, &a)
	if errors.Is(err, errNoDaemon) {
		return nil, fmt.Errorf("no daemon answers on control socket %s", c.Socket)
	}
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// Flush makes every unheld message due now and returns how many are due.
func (c *Client) Flush(ctx context.Context) (int, error) {
	var n countBody
	err := c.call(ctx, http.MethodPost, "/v1/flush", true, &n)
	if !errors.Is(err, errNoDaemon) {
		return n.Count, err
	}
	opened, err := c.direct(true, func(s *spool.Spool) error {
		var err error
		n.Count, err = s.Flush()
		return err
	})
	if err == nil && opened && n.Count > 0 && c.Kick != nil {
		c.Kick()
	}
	return n.Count, err
}

// Stats counts the queue.
func (c *Client) Stats(ctx context.Context) (spool.Stats, error) {
	var st spool.Stats
	err := c.call(ctx, http.MethodGet, "/v1/stats", true, &st)
	if !errors.Is(err, errNoDaemon) {
		return st, err
	}
	_, err = c.direct(true, func(s *spool.Spool) error {
		var err error
		st, err = s.Stats()
		return err
	})
	return st, err
}

// Compact rewrites the spool file to its live size.
func (c *Client) Compact(ctx context.Context) error {
	var ok okBody
	err := c.call(ctx, http.MethodPost, "/v1/compact", false, &ok)
	if !errors.Is(err, errNoDaemon) {
		return err
	}
	_, err = c.direct(true, func(s *spool.Spool) error { return s.Compact() })
	return err
}

// Health asks the daemon whether it is up, accepts mail and can read its
// spool (GET /v1/health), waiting at most c.Timeout. There is no direct
// route: without a daemon the answer is an error saying so.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	err := c.call(ctx, http.MethodGet, "/v1/health", true, &h)
	if errors.Is(err, errNoDaemon) {
		return h, fmt.Errorf("no daemon answers on the control socket %s", c.Socket)
	}
	return h, err
}

// DaemonRunning reports whether something accepts connections on the
// control socket.
func (c *Client) DaemonRunning() bool {
	if c.Socket == "" {
		return false
	}
	conn, err := net.DialTimeout("unix", c.Socket, time.Second)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}
