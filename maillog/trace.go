package maillog

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
)

// Redacted replaces every hidden SASL payload.
const Redacted = "***"

// maxTraceLine bounds one logged trace line (a 100 MB DATA line must not
// become a 100 MB log record).
const maxTraceLine = 1024

// Redactor hides SASL exchanges in an SMTP protocol trace. It keeps state
// across lines (an AUTH exchange spans several), so use one per connection.
// The zero value is ready to use. It is not safe for concurrent use.
type Redactor struct {
	inAuth bool // between "AUTH <mech>" and the server's final (non-334) reply
	inData bool // between the 354 reply and the final "." (message content)
}

// IsReply reports whether line looks like a server reply ("250 ...",
// "250-..."). SASL payloads are base64, which has neither space nor '-', so
// they are never mistaken for replies.
func IsReply(line string) bool {
	if len(line) < 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if line[i] < '0' || line[i] > '9' {
			return false
		}
	}
	return len(line) == 3 || line[3] == ' ' || line[3] == '-'
}

// Client redacts one line the client sent (without CRLF).
func (r *Redactor) Client(line string) string {
	if r.inData {
		if line == "." {
			r.inData = false
		}
		return line
	}
	if r.inAuth {
		if line == "*" { // RFC 4954: the client cancels the exchange
			return line
		}
		return Redacted
	}
	f := strings.Fields(line)
	if len(f) >= 1 && strings.EqualFold(f[0], "AUTH") {
		r.inAuth = true
		switch len(f) {
		case 1:
			return f[0]
		case 2:
			return f[0] + " " + f[1]
		default:
			return f[0] + " " + f[1] + " " + Redacted
		}
	}
	return line
}

// Server redacts one line the server sent (without CRLF).
func (r *Redactor) Server(line string) string {
	if strings.HasPrefix(line, "354") {
		r.inData = true
		return line
	}
	if r.inAuth {
		if strings.HasPrefix(line, "334") {
			return "334 " + Redacted
		}
		if IsReply(line) && len(line) >= 4 && line[3] == ' ' {
			r.inAuth = false
		}
	}
	return line
}

// Line redacts one line of a mixed stream (go-smtp's DebugWriter carries
// both directions), telling the direction by the reply syntax. It returns
// the direction ("<" server, ">" client) and the redacted line.
func (r *Redactor) Line(line string) (dir, out string) {
	if r.inData {
		// Inside DATA every line is content sent by the client; the only
		// way out is the "." line, after which the server replies.
		return ">", r.Client(line)
	}
	if IsReply(line) {
		return "<", r.Server(line)
	}
	return ">", r.Client(line)
}

// Trace returns an io.Writer that logs each line written to it at debug
// level as a protocol trace event for queue ID id (may be "") and peer,
// with AUTH payloads redacted. Message content (between 354 and ".") is
// not logged line by line; only its size is. Give it to go-smtp's
// Client.DebugWriter or Server.Debug. Safe for concurrent use.
func (l *Logger) Trace(id, peer string) *TraceWriter {
	return &TraceWriter{l: l, id: qid(id), peer: peer}
}

// TraceWriter is the io.Writer returned by Logger.Trace.
type TraceWriter struct {
	l        *Logger
	id, peer string

	mu       sync.Mutex
	red      Redactor
	buf      []byte
	dataSize int
	skipping bool // the current line is too long: drop until its end
}

// Write splits p into lines and logs each complete one.
func (t *TraceWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.l == nil || t.l.Logger == nil || !t.l.Enabled(context.Background(), slog.LevelDebug) {
		return len(p), nil
	}
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			t.add(p)
			break
		}
		t.add(p[:i])
		p = p[i+1:]
		t.flushLine()
	}
	return n, nil
}

func (t *TraceWriter) add(b []byte) {
	if t.skipping {
		return
	}
	room := maxTraceLine - len(t.buf)
	if len(b) > room {
		b = b[:room]
		t.skipping = true
	}
	t.buf = append(t.buf, b...)
}

func (t *TraceWriter) flushLine() {
	line := strings.TrimSuffix(string(t.buf), "\r")
	t.buf = t.buf[:0]
	truncated := t.skipping
	t.skipping = false
	wasData := t.red.inData
	dir, out := t.red.Line(line)
	if wasData && t.red.inData {
		t.dataSize += len(line) + 2
		return
	}
	if wasData && !t.red.inData {
		t.l.log(slog.LevelDebug, "smtp", slog.String("queue_id", t.id), slog.String("peer", t.peer),
			slog.String("dir", dir), slog.String("line", "(message content)"), slog.Int("size", t.dataSize))
		t.dataSize = 0
	}
	if truncated {
		out += " (truncated)"
	}
	t.l.log(slog.LevelDebug, "smtp", slog.String("queue_id", t.id), slog.String("peer", t.peer),
		slog.String("dir", dir), slog.String("line", out))
}
