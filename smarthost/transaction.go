package smarthost

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// transaction is [RSET,] MAIL, RCPT…, then DATA or, when the relay
// offers CHUNKING, the body as BDAT chunks (RFC 3030). With PIPELINING
// (RFC 2920) the commands go as one group: with BDAT, a body of up to
// bdatChunk octets goes in the same flight as "BDAT n LAST", so a message
// takes one round trip; with DATA, two (the group up to DATA, then the
// body). Without PIPELINING every command waits for its reply. rest lists
// recipients deferred by 452 (for another transaction); on error it
// lists those still without an answer.
func (c *Client) transaction(ctx context.Context, s *session, m *Message, pending []int, out *Outcome) (rest []int, err error) {
	x := &txn{c: c, s: s, cn: s.c, t: c.o.Timeouts, m: m, out: out}
	if perr := c.precheck(x.cn, m); perr != nil {
		var pe *permanentError
		if !errors.As(perr, &pe) {
			return x.fail(phMail, pending, perr)
		}
		x.set(pending, classify(phMail, perr))
		return nil, nil
	}
	x.pipe = x.cn.has("PIPELINING")
	x.bdat = x.cn.has("CHUNKING")
	rset := s.needRset
	if rset && x.cn.gone() {
		// Closed by the relay while idle: nothing is sent on it.
		x.cn.broken = true
		return pending, errStale
	}
	if x.bdat {
		body, err := c.bodyFor(x.cn, m)
		if err != nil {
			// Nothing sent yet: the session stays usable.
			return x.bodyFailed(pending, err)
		}
		x.chunks = newChunker(body)
		defer x.chunks.close()
		if x.chunk, x.last, err = x.chunks.next(); err != nil {
			return x.bodyFailed(pending, err)
		}
	}
	s.needRset = true
	mail, rcpts := x.commands(pending)
	if x.pipe {
		if err := x.sendGroup(rset, mail, rcpts); err != nil {
			// A failed write: the relay did not get the whole group (and
			// so no complete last chunk).
			if rset {
				return pending, errStale
			}
			return x.fail(phMail, pending, err)
		}
		x.chunkOut = x.bdat
		x.lastOut = x.bdat && x.last
	}
	if rset {
		if _, err := x.step(x.t.Rset, 2, "RSET", "RSET"); err != nil {
			x.cn.broken = true
			if x.lastOut {
				// The whole message went with the RSET: the relay may
				// have it. Deferred, not sent again at once.
				return x.fail(phDataDone, pending, err)
			}
			return pending, errStale
		}
	}
	if _, err := x.step(x.t.Mail, 2, "MAIL", mail); err != nil {
		x.drain(len(rcpts) + 1)
		return x.fail(phMail, pending, err)
	}
	accepted, rest, err := x.recipients(pending, rcpts)
	if err != nil {
		return rest, err
	}
	if len(accepted) == 0 {
		if x.pipe {
			x.drain(1)
			return rest, nil
		}
		s.needRset = true
		return rest, nil
	}
	var r []int
	if x.bdat {
		r, err = x.chunked(accepted)
	} else {
		r, err = x.data(accepted)
	}
	return append(r, rest...), err
}

// txn is one mail transaction on a session: what its steps share.
type txn struct {
	c    *Client
	s    *session
	cn   *conn
	t    Timeouts
	m    *Message
	out  *Outcome
	pipe bool // the relay offers PIPELINING: commands go as one group
	bdat bool // the relay offers CHUNKING: the body goes as BDAT chunks

	chunks   *chunker
	chunk    []byte // the next chunk to send (the first: with the group)
	last     bool   // chunk is the last
	chunkOut bool   // the first chunk went with the group
	lastOut  bool   // the last chunk is on the wire: the relay may have the message
}

// set records verdict v for the recipients idx.
func (x *txn) set(idx []int, v verdict) {
	for _, i := range idx {
		x.out.Recipients[i] = v.rcpt(x.m.Recipients[i].Addr)
	}
	if v.AuthFailed {
		x.out.AuthFailed = true
		x.out.Kind = KindAuth
	}
}

// classify is classify for this session: a session that did not
// authenticate defers "relay access denied" instead of bouncing.
func (x *txn) classify(p phase, err error) verdict {
	if x.s.authed == "" {
		return classifyUnauth(p, err)
	}
	return classify(p, err)
}

// fail records err in phase p for idx; a bounce ends their attempt, any
// other verdict leaves them pending and is returned as the error. Once
// the last BDAT chunk is on the wire a lost connection is a loss after
// the end of data, whatever reply was due (the relay may have the
// message: deferred, no other relay tried).
func (x *txn) fail(p phase, idx []int, err error) ([]int, error) {
	v := x.classify(x.phase(p, err), err)
	x.set(idx, v)
	if v.Status == Bounced {
		return nil, nil
	}
	return idx, &deliveryError{v: v, err: fmt.Errorf("%s: %w", p, err)}
}

// phase is p, or phDataDone for a connection error once the last BDAT
// chunk was sent.
func (x *txn) phase(p phase, err error) phase {
	var re *ReplyError
	if x.lastOut && !errors.As(err, &re) {
		return phDataDone
	}
	return p
}

// bodyFailed defers idx when the queued body cannot be read before
// anything of the transaction was sent.
func (x *txn) bodyFailed(idx []int, err error) ([]int, error) {
	v := verdict{Status: Deferred, Enhanced: "4.3.0", Text: "cannot read the queued message body: " + err.Error()}
	x.set(idx, v)
	return idx, &deliveryError{v: v, err: fmt.Errorf("open body: %w", err)}
}

// commands are the MAIL command and one RCPT command per pending
// recipient (with NOTIFY and ORCPT when the relay offers DSN).
func (x *txn) commands(pending []int) (mail string, rcpts []string) {
	mail = x.c.mailCommand(x.cn, x.m)
	rcpts = make([]string, len(pending))
	for k, i := range pending {
		r := x.m.Recipients[i]
		rcpts[k] = "RCPT TO:<" + r.Addr + ">"
		if x.cn.has("DSN") {
			rcpts[k] += dsnRcptParams(r)
		}
	}
	return mail, rcpts
}

// sendGroup sends [RSET,] MAIL, the RCPTs and DATA, or the first BDAT
// chunk, as one group (PIPELINING); the replies are read by step, in
// order.
func (x *txn) sendGroup(rset bool, mail string, rcpts []string) error {
	var group []string
	if rset {
		group = append(group, "RSET")
	}
	group = append(group, mail)
	group = append(group, rcpts...)
	if !x.bdat {
		group = append(group, "DATA")
		return x.cn.sendGroup(x.t.Mail, group, nil)
	}
	group = append(group, bdatLine(len(x.chunk), x.last))
	return x.cn.sendGroup(x.t.Mail, group, x.chunk)
}

// step reads the reply to the next command, checking its class (want is
// the first digit); without PIPELINING it sends the command first.
func (x *txn) step(d time.Duration, want int, verb, line string) (reply, error) {
	if !x.pipe {
		return x.cn.cmd(d, want, verb, line)
	}
	r, err := x.cn.read(d)
	if err != nil {
		return r, err
	}
	if r.Code/100 != want {
		return r, r.Err(verb)
	}
	return r, nil
}

// drain reads the n replies still due for a pipelined group after a
// failure that ends the transaction early; a 354 gets an empty body.
func (x *txn) drain(n int) {
	if !x.pipe {
		return
	}
	for ; n > 0; n-- {
		r, err := x.cn.read(x.t.Rcpt)
		if err != nil {
			return
		}
		if n == 1 && r.Code == 354 && !x.bdat {
			// Should not happen (no recipient accepted); end the empty data.
			if x.cn.send(x.t.DataDone, ".", ".") == nil {
				x.cn.read(x.t.DataDone)
			}
		}
	}
}

// recipients reads (or, in lock step, sends and reads) one RCPT per
// pending recipient: accepted ones, and rest, those a 452 deferred to
// another transaction (in lock step, every one after the first 452). A
// lost connection ends it with an error and the unanswered recipients in
// rest.
func (x *txn) recipients(pending []int, rcpts []string) (accepted, rest []int, err error) {
	var tooMany verdict
	for k, i := range pending {
		if !x.pipe && len(rest) > 0 {
			// Not sent after a 452 (lock step): same answer.
			rest = append(rest, i)
			x.set([]int{i}, tooMany)
			continue
		}
		_, err := x.step(x.t.Rcpt, 2, "RCPT", rcpts[k])
		if err == nil {
			accepted = append(accepted, i)
			continue
		}
		v := x.classify(phRcpt, err)
		var re *ReplyError
		if !errors.As(err, &re) {
			// Connection trouble: the rest stays pending for the next relay
			// (unless the whole message went out with BDAT LAST).
			v = x.classify(x.phase(phRcpt, err), err)
			x.set(pending[k:], v)
			x.cn.broken = true
			return nil, pending[k:], &deliveryError{v: v, err: fmt.Errorf("RCPT: %w", err)}
		}
		x.set([]int{i}, v)
		if v.TooMany {
			rest = append(rest, i)
			tooMany = v
		}
	}
	return accepted, rest, nil
}

// data is DATA, the body and the final dot for the accepted recipients;
// the reply to the dot decides for all of them.
func (x *txn) data(accepted []int) ([]int, error) {
	if _, err := x.step(x.t.Data, 3, "DATA", "DATA"); err != nil {
		return x.fail(phData, accepted, err)
	}
	body, err := x.c.bodyFor(x.cn, x.m)
	if err != nil {
		// 354 is out and a "." would send an empty message: drop the
		// connection instead (the relay discards the transaction).
		x.cn.close()
		v := verdict{Status: Deferred, Enhanced: "4.3.0", Text: "cannot read the queued message body: " + err.Error()}
		x.set(accepted, v)
		return accepted, &deliveryError{v: v, err: fmt.Errorf("open body: %w", err)}
	}
	r, err := x.cn.sendBody(body)
	body.Close()
	if err != nil {
		ph := phData
		if x.cn.sentDot {
			ph = phDataDone
		}
		return x.fail(ph, accepted, err)
	}
	x.set(accepted, verdict{Status: Delivered, Code: r.Code, Enhanced: r.Enhanced(), Text: r.Text()})
	return nil, nil
}

// chunked sends the body as BDAT chunks for the accepted recipients (the
// first may have gone with the group) and reads their replies, at most
// bdatWindow chunks unanswered with PIPELINING, each answered before the
// next without. The reply to the last chunk decides for all of them. A
// refused chunk ends the transaction: no more chunks go, the replies due
// are read, and the next transaction's RSET finds the session clean.
func (x *txn) chunked(accepted []int) ([]int, error) {
	due := 0 // chunks sent and not yet answered
	if x.chunkOut {
		due = 1
	}
	failed := func(p phase, err error) ([]int, error) {
		for ; due > 0 && !x.cn.broken; due-- {
			x.cn.read(x.t.DataBlock)
		}
		return x.fail(p, accepted, err)
	}
	// answer reads the reply to the oldest chunk still unanswered.
	answer := func() error {
		d := x.t.DataBlock
		if due == 1 && x.lastOut {
			d = x.t.DataDone
		}
		r, err := x.cn.read(d)
		due--
		if err != nil {
			return err
		}
		if r.Code/100 != 2 {
			return r.Err("BDAT")
		}
		if due == 0 && x.lastOut {
			x.set(accepted, verdict{Status: Delivered, Code: r.Code, Enhanced: r.Enhanced(), Text: r.Text()})
		}
		return nil
	}
	if !x.chunkOut {
		if err := x.sendChunk(); err != nil {
			return failed(phData, err)
		}
		due++
	}
	for !x.lastOut {
		var err error
		if x.chunk, x.last, err = x.chunks.next(); err != nil {
			// No last chunk will come: the relay keeps nothing (the next
			// RSET or QUIT discards the transaction, RFC 3030 §3).
			for ; due > 0 && !x.cn.broken; due-- {
				x.cn.read(x.t.DataBlock)
			}
			return x.bodyFailed(accepted, err)
		}
		if !x.pipe || due >= bdatWindow {
			if err := answer(); err != nil {
				return failed(phData, err)
			}
		}
		if err := x.sendChunk(); err != nil {
			return failed(phData, err)
		}
		due++
	}
	for due > 0 {
		final := due == 1
		if err := answer(); err != nil {
			if final {
				return x.fail(phDataDone, accepted, err)
			}
			return failed(phData, err)
		}
	}
	return nil, nil
}

// sendChunk writes the next BDAT command and its chunk.
func (x *txn) sendChunk() error {
	if err := x.cn.sendGroup(x.t.DataBlock, []string{bdatLine(len(x.chunk), x.last)}, x.chunk); err != nil {
		return err
	}
	x.lastOut = x.last
	return nil
}
