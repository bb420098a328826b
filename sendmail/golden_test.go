package sendmail

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// goldenCases are whole messages as callers hand them over; the golden
// file holds the envelope and message relayq queues.
var goldenCases = []struct {
	name  string
	args  []string
	input string
	setup func(*testing.T, *Options)
}{
	{"bare-lf", []string{"-i", "bob@example.net"},
		"Subject: bare LF\nFrom: alice@example.org\nTo: bob@example.net\n\nline one\nline two\n", nil},
	{"crlf-kept", []string{"-i", "bob@example.net"},
		"Subject: CRLF\r\nTo: bob@example.net\r\n\r\nline one\r\nline two\r\n", nil},
	{"missing-headers", []string{"bob@example.net"},
		"just a body, no header at all\n", nil},
	{"missing-headers-fullname", []string{"-F", "Backup Job", "-f", "alice", "bob@example.net"},
		"Subject: nightly\n\nok\n", nil},
	{"fullname-quoted", []string{"-F", "Smith, John (ops)", "bob@example.net"},
		"Subject: q\n\nok\n", nil},
	{"fullname-control", []string{"-F", "Tab\tand\x01bell\x07", "bob@example.net"},
		"Subject: q\n\nok\n", nil},
	{"fullname-utf8", []string{"-F", "Zoë Ünicode", "bob@example.net"},
		"Subject: q\n\nok\n", nil},
	{"bcc-dropped", []string{"-t", "-i"},
		"From: alice@example.org\nTo: bob@example.net\nCc: carol@example.net\nBcc: secret@example.com,\n  other-secret@example.com\nReturn-Path: <x@y>\nContent-Length: 12\nSubject: t\n\nbody\n", nil},
	{"bcc-only", []string{"-t"},
		"Bcc: hidden@example.com\nSubject: only bcc\n\nbody\n", nil},
	{"t-plus-cmdline", []string{"-t", "extra@example.com"},
		"To: \"Bob B.\" <bob@example.net>, carol (Carol C.)\nCc: team: dan@example.com, eve@example.com;\nSubject: t\n\nbody\n", nil},
	{"resent", []string{"-t", "-i"},
		"Resent-To: new@example.com\nResent-Cc: copy@example.com\nResent-Bcc: hidden@example.com\nFrom: orig@example.net\nTo: original@example.net\nDate: Sun, 1 Nov 2026 10:00:00 +0000\nMessage-ID: <orig@example.net>\nSubject: fwd\n\nbody\n", nil},
	{"dot-ends", []string{"bob@example.net"},
		"Subject: dot\n\nbefore\n.\nafter the dot\n", nil},
	{"dot-crlf-ends", []string{"bob@example.net"},
		"Subject: dot\r\n\r\nbefore\r\n.\r\nafter the dot\r\n", nil},
	{"dot-with-i", []string{"-i", "bob@example.net"},
		"Subject: dot\n\nbefore\n.\n..\n.x\nafter the dot\n", nil},
	{"dot-with-oi", []string{"-oi", "bob@example.net"},
		"Subject: dot\n\n.\nafter\n", nil},
	{"dot-in-header", []string{"bob@example.net"},
		"Subject: dot\n.\nnever read\n", nil},
	{"stray-cr-nul", []string{"-i", "bob@example.net"},
		"Subject: cr\rin header\nTo: bob@example.net\n\nbody\rwith stray CR\nnul\x00byte\nend\r\r\n", nil},
	{"eight-bit", []string{"-i", "bob@example.net"},
		"Subject: 8bit body\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nGrüße aus Köln\n", nil},
	{"utf8-header", []string{"-i", "bob@example.net"},
		"Subject: Grüße\n\nascii body\n", nil},
	{"utf8-address", []string{"-t", "-i"},
		"To: Jörg <jörg@bücher.example>\nSubject: Grüße\n\nbody\n", nil},
	{"latin1-header", []string{"-i", "bob@example.net"},
		"Subject: Gr\xfc\xdfe\n\nascii body\n", nil},
	{"declared-8bitmime", []string{"-i", "-B8BITMIME", "bob@example.net"},
		"Subject: declared\n\nascii only\n", nil},
	{"long-body-line", []string{"-i", "bob@example.net"},
		"Subject: long\n\n" + strings.Repeat("0123456789", 250) + "\n" + strings.Repeat("ü", 600) + "\nshort\n", nil},
	{"long-header-line", []string{"-i", "bob@example.net"},
		"Subject: " + strings.Repeat("word ", 300) + "\nX-Long: " + strings.Repeat("x", 2100) + "\n\nbody\n", nil},
	{"no-blank-line", []string{"-i", "bob@example.net"},
		"Subject: s\nTo: bob@example.net\nthis line is not a header\nmore body\n", nil},
	{"mbox-from-line", []string{"-i", "bob@example.net"},
		"From alice@example.org Sun Nov 22 21:08:12 2026\nSubject: mbox\n\nbody\n", nil},
	{"no-final-newline", []string{"-i", "bob@example.net"},
		"Subject: eof\n\nlast line without newline", nil},
	{"header-only", []string{"-i", "bob@example.net"},
		"Subject: header only\nTo: bob@example.net", nil},
	{"cron", []string{"-FCronDaemon", "-i", "-B8BITMIME", "-oem", "root"},
		"Content-Type: text/plain; charset=UTF-8\nSubject: Cron <root@host> /usr/local/bin/job\nTo: root\nAuto-Submitted: auto-generated\nPrecedence: bulk\n\njob output\n", nil},
	{"bare-names-qualified", []string{"-t", "-i"},
		"From: root (Cron)\nTo: root, bob@example.net\nCc: ops <ops>\n\nbody\n", nil},
	{"aliases", []string{"-i", "root", "postmaster@localhost", "nobody-aliased"},
		"Subject: aliases\n\nbody\n", func(t *testing.T, o *Options) {
			p := filepath.Join(t.TempDir(), "aliases")
			if err := os.WriteFile(p, []byte("postmaster: root\nroot: admin@example.com, ops\nops: ops@example.net, root\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			o.AliasesPath = p
		}},
	{"dsn", []string{"-i", "-N", "success,failure", "-R", "hdrs", "-V", "env-42", "bob@example.net"},
		"Subject: dsn\n\nbody\n", nil},
	{"untrusted-f-warns", []string{"-i", "-f", "boss@example.com", "bob@example.net"},
		"Subject: forged?\n\nbody\n", nil},
	{"own-f-no-warning", []string{"-i", "-f", "alice@example.org", "bob@example.net"},
		"Subject: mine\n\nbody\n", nil},
	{"trusted-f", []string{"-i", "-r", "Ops <ops@example.com>", "bob@example.net"},
		"Subject: trusted\n\nbody\n", func(t *testing.T, o *Options) { o.Identity = Identity{UID: 0, User: "root", FullName: "root"} }},
	{"localhost-sender", []string{"-i", "-f", "root@localhost", "bob@example.net"},
		"From: Root <root@localhost>\nCc: ops@host.example.org\nSubject: local names\n\nbody\n", func(t *testing.T, o *Options) { o.Identity = Identity{UID: 0, User: "root"} }},
	{"null-sender", []string{"-i", "-f", "<>", "bob@example.net"},
		"Subject: bounce-like\n\nbody\n", func(t *testing.T, o *Options) { o.Identity = Identity{UID: 0, User: "root"} }},
	{"generic-map", []string{"-i", "bob@example.net"},
		"From: Alice <alice@host.example.org>\nSubject: generic\n\nbody\n", func(t *testing.T, o *Options) {
			o.Generic = mustGeneric(t, "alice@host.example.org alerts@example.com\n@example.org alerts@example.com\n")
		}},
	{"generic-added-from", []string{"-i", "bob@example.net"},
		"Subject: generic, no From\n\nbody\n", func(t *testing.T, o *Options) {
			o.Generic = mustGeneric(t, "@example.org relay-user@example.com\n")
		}},
	{"sender-rewrite", []string{"-i", "bob@example.net"},
		"From: \"Web App\" <www-data@host.example.org>\nSubject: rewrite\n\nbody\n", func(t *testing.T, o *Options) {
			o.SenderRewrite = "alerts@example.com"
		}},
	{"sender-rewrite-keeps-reply-to", []string{"-i", "bob@example.net"},
		"From: app@example.org\nReply-To: support@example.org\nSubject: rewrite\n\nbody\n", func(t *testing.T, o *Options) {
			o.SenderRewrite = "alerts@example.com"
		}},
	{"received-kept", []string{"-i", "bob@example.net"},
		"Received: from a by b; Sun, 1 Nov 2026 10:00:00 +0000\nSubject: hop\n\nbody\n", nil},
}

func TestGolden(t *testing.T) {
	t.Parallel()
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			q := &fakeQueue{}
			o, _, errb := testOptions(q, tc.input)
			if tc.setup != nil {
				tc.setup(t, &o)
			}
			if code := Main(context.Background(), o, tc.args); code != ExitOK {
				t.Fatalf("exit %d, stderr: %s", code, errb)
			}
			if len(q.msgs) != 1 {
				t.Fatalf("queued %d messages, want 1", len(q.msgs))
			}
			checkWire(t, q.msgs[0].body)
			got := render(q.msgs[0])
			path := filepath.Join("testdata", "golden", tc.name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update)", err)
			}
			if got != string(want) {
				t.Errorf("queued message differs from %s:\n--- got\n%s\n--- want\n%s", path, got, want)
			}
		})
	}
}
