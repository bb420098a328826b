package maillog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func jsonLogger(buf *bytes.Buffer, level slog.Level) *Logger {
	return New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: level}))
}

func records(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestEvents(t *testing.T) {
	t.Parallel()
	next := time.Date(2026, 11, 22, 22, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		emit  func(l *Logger)
		level string
		msg   string
		want  map[string]any
	}{
		{"queued", func(l *Logger) { l.Queued("0ABC", "", 2, 1234, "uid=1000") }, "INFO", "queued",
			map[string]any{"queue_id": "0ABC", "from": "<>", "rcpts": 2.0, "size": 1234.0, "origin": "uid=1000"}},
		{"delivered", func(l *Logger) {
			l.Delivered("0ABC", "smtp.example[192.0.2.1]:587", "a@example.com", "250 2.0.0 Ok", 1, 1500*time.Millisecond)
		}, "INFO", "delivered",
			map[string]any{"queue_id": "0ABC", "rcpt": "a@example.com", "relay": "smtp.example[192.0.2.1]:587",
				"reply": "250 2.0.0 Ok", "attempt": 1.0, "delay": float64(1500 * time.Millisecond), "status": "delivered"}},
		{"deferred", func(l *Logger) { l.Deferred("0ABC", "r", "a@x", "451 4.3.0 later", 2, time.Second, next) }, "WARN", "deferred",
			map[string]any{"status": "deferred", "next": "2026-11-22T22:00:00Z", "attempt": 2.0}},
		{"bounced", func(l *Logger) { l.Bounced("0ABC", "r", "a@x", "550 5.1.1 no", 1, 0) }, "WARN", "bounced",
			map[string]any{"status": "bounced", "reply": "550 5.1.1 no"}},
		{"expired", func(l *Logger) { l.Expired("0ABC", "a@x", "451 busy", 40, 5*24*time.Hour) }, "WARN", "expired",
			map[string]any{"status": "expired", "attempt": 40.0}},
		{"auth", func(l *Logger) { l.AuthFailure("0ABC", "r", "535 5.7.8 bad") }, "ERROR", "authentication failed",
			map[string]any{"reply": "535 5.7.8 bad", "relay": "r"}},
		{"rejected", func(l *Logger) { l.Rejected("127.0.0.1:1", "s@x", "r@y", "554 no") }, "WARN", "rejected",
			map[string]any{"queue_id": "-", "origin": "127.0.0.1:1"}},
		{"dsn", func(l *Logger) { l.DSN("0ABC", "0ABD", "s@x", "failure") }, "INFO", "dsn queued",
			map[string]any{"dsn_id": "0ABD", "rcpt": "s@x"}},
		{"attemptdone error", func(l *Logger) {
			l.AttemptDone("0ABC", "", 3, []string{"a@x", "b@y"}, time.Second, errors.New("dial: refused"))
		}, "WARN", "attempt",
			map[string]any{"error": "dial: refused", "rcpts": 2.0, "rcpt": "a@x,b@y", "duration": float64(time.Second)}},
		{"attemptdone ok", func(l *Logger) { l.AttemptDone("0ABC", "r[1.2.3.4]:587", 1, []string{"a@x"}, 20*time.Millisecond, nil) }, "INFO", "attempt",
			map[string]any{"relay": "r[1.2.3.4]:587", "attempt": 1.0}},
		{"spool error", func(l *Logger) { l.SpoolError("", "update", errors.New("disk")) }, "ERROR", "spool error",
			map[string]any{"queue_id": "-", "op": "update"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tt.emit(jsonLogger(&buf, slog.LevelDebug))
			recs := records(t, &buf)
			if len(recs) != 1 {
				t.Fatalf("got %d records, want 1: %s", len(recs), buf.String())
			}
			r := recs[0]
			if r["level"] != tt.level || r["msg"] != tt.msg {
				t.Errorf("level/msg = %v/%v, want %v/%v", r["level"], r["msg"], tt.level, tt.msg)
			}
			for k, v := range tt.want {
				if fmt.Sprint(r[k]) != fmt.Sprint(v) {
					t.Errorf("%s = %v, want %v", k, r[k], v)
				}
			}
		})
	}
}

func TestNilAndDiscard(t *testing.T) {
	t.Parallel()
	var l *Logger
	l.Queued("x", "", 1, 1, "") // must not panic
	New(nil).Queued("x", "", 1, 1, "")
	Wrap(nil).AuthFailure("x", "r", "535")
}

func TestRedactorClientServer(t *testing.T) {
	t.Parallel()
	type step struct{ dir, in, want string }
	tests := []struct {
		name  string
		steps []step
	}{
		{"plain initial response", []step{
			{">", "EHLO me", "EHLO me"},
			{"<", "250-AUTH PLAIN LOGIN", "250-AUTH PLAIN LOGIN"},
			{">", "AUTH PLAIN AHVzZXIAc2VjcmV0", "AUTH PLAIN ***"},
			{"<", "235 2.7.0 ok", "235 2.7.0 ok"},
			{">", "MAIL FROM:<a@b>", "MAIL FROM:<a@b>"},
		}},
		{"login two steps", []step{
			{">", "AUTH LOGIN", "AUTH LOGIN"},
			{"<", "334 VXNlcm5hbWU6", "334 ***"},
			{">", "dXNlcg==", "***"},
			{"<", "334 UGFzc3dvcmQ6", "334 ***"},
			{">", "c2VjcmV0", "***"},
			{"<", "535 5.7.8 bad", "535 5.7.8 bad"},
			{">", "QUIT", "QUIT"},
		}},
		{"plain empty then response", []step{
			{">", "auth plain", "auth plain"},
			{"<", "334 ", "334 ***"},
			{">", "AHVzZXIAc2VjcmV0", "***"},
			{"<", "235 ok", "235 ok"},
			{">", "RCPT TO:<x@y>", "RCPT TO:<x@y>"},
		}},
		{"cancel", []step{
			{">", "AUTH SCRAM-SHA-256 biwsbj11c2Vy", "AUTH SCRAM-SHA-256 ***"},
			{"<", "334 cj1ub25jZQ==", "334 ***"},
			{">", "*", "*"},
			{"<", "501 5.0.0 cancelled", "501 5.0.0 cancelled"},
			{">", "NOOP", "NOOP"},
		}},
		{"multiline final reply ends auth only at last line", []step{
			{">", "AUTH PLAIN", "AUTH PLAIN"},
			{"<", "334 ", "334 ***"},
			{">", "secretline", "***"},
			{"<", "535-5.7.8 first", "535-5.7.8 first"},
			{"<", "535 5.7.8 last", "535 5.7.8 last"},
			{">", "QUIT", "QUIT"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Redactor
			for i, s := range tt.steps {
				var got string
				if s.dir == ">" {
					got = r.Client(s.in)
				} else {
					got = r.Server(s.in)
				}
				if got != s.want {
					t.Errorf("step %d %s %q: got %q, want %q", i, s.dir, s.in, got, s.want)
				}
			}
		})
	}
}

func TestTraceWriter(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	l := jsonLogger(&buf, slog.LevelDebug)
	w := l.Trace("0ABC", "smtp.example:587")
	stream := "220 hi\r\nEHLO me\r\n250-smtp\r\n250 AUTH PLAIN\r\nAUTH PLAIN AHVzZXIAaHVudGVyMg==\r\n235 ok\r\n" +
		"MAIL FROM:<a@b>\r\n250 ok\r\nDATA\r\n354 go\r\nSubject: AUTH PLAIN AHVzZXIAaHVudGVyMg==\r\n\r\n250 looks like a reply\r\n.\r\n250 queued\r\nQUIT\r\n"
	// Write in awkward pieces, as a TeeReader would.
	for i := 0; i < len(stream); i += 7 {
		end := min(i+7, len(stream))
		if _, err := w.Write([]byte(stream[i:end])); err != nil {
			t.Fatal(err)
		}
	}
	out := buf.String()
	if strings.Contains(out, "AHVzZXIAaHVudGVyMg") {
		t.Fatalf("trace leaked the AUTH payload or message content:\n%s", out)
	}
	recs := records(t, &buf)
	var lines []string
	for _, r := range recs {
		if r["queue_id"] != "0ABC" || r["peer"] != "smtp.example:587" {
			t.Errorf("record without queue_id/peer: %v", r)
		}
		lines = append(lines, fmt.Sprint(r["dir"], " ", r["line"]))
	}
	want := []string{"< 220 hi", "> EHLO me", "< 250-smtp", "< 250 AUTH PLAIN", "> AUTH PLAIN ***", "< 235 ok",
		"> MAIL FROM:<a@b>", "< 250 ok", "> DATA", "< 354 go", "> (message content)", "> .", "< 250 queued", "> QUIT"}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Errorf("trace lines:\n got %q\nwant %q", lines, want)
	}
}

func TestTraceWriterOffAtInfo(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	w := jsonLogger(&buf, slog.LevelInfo).Trace("x", "p")
	fmt.Fprintf(w, "EHLO me\r\n")
	if buf.Len() != 0 {
		t.Errorf("trace written at info level: %s", buf.String())
	}
}

func TestTraceWriterLongLine(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	w := jsonLogger(&buf, slog.LevelDebug).Trace("x", "p")
	fmt.Fprintf(w, "NOOP %s\r\nQUIT\r\n", strings.Repeat("a", 10000))
	recs := records(t, &buf)
	if len(recs) != 2 {
		t.Fatalf("got %d records", len(recs))
	}
	if l := recs[0]["line"].(string); len(l) > maxTraceLine+20 || !strings.HasSuffix(l, "(truncated)") {
		t.Errorf("long line not truncated: %d bytes", len(l))
	}
	if recs[1]["line"] != "QUIT" {
		t.Errorf("next line = %v", recs[1]["line"])
	}
}

// FuzzRedactor checks that a credential given after AUTH never reaches the
// output, whatever the rest of the stream is.
func FuzzRedactor(f *testing.F) {
	f.Add("EHLO x\n250 ok\n", "c2VjcmV0")
	f.Add("AUTH LOGIN\n334 VXNlcm5hbWU6\n", "dXNlcg==")
	f.Add("DATA\n354 go\n.\n250 ok\n", "QUFBQUFBQUE=")
	f.Fuzz(func(t *testing.T, prefix, secret string) {
		if len(secret) < 8 || strings.ContainsAny(secret, " \r\n-*") || IsReply(secret) {
			return
		}
		var buf bytes.Buffer
		w := jsonLogger(&buf, slog.LevelDebug).Trace("x", "p")
		// Whatever came before, once the previous exchange ended with a
		// final reply and the client starts AUTH, the secret stays hidden.
		fmt.Fprintf(w, "%s\r\n.\r\n250 ok\r\nAUTH PLAIN %s\r\n334 \r\n%s\r\n235 ok\r\n", prefix, secret, secret)
		if strings.Contains(buf.String(), secret) {
			if strings.Contains(prefix, secret) {
				return // the prefix itself logged it
			}
			t.Fatalf("secret %q leaked:\n%s", secret, buf.String())
		}
	})
}
